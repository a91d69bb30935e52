using System.Diagnostics;
using MambaAD.Checkpoints;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Tests.CommandLine;
using Xunit.Abstractions;

namespace MambaAD.Tests.Inference;

/// <summary>
/// A small untrained checkpoint (64², resnet18, depths 2-2-2-2, with thresholds so that masks are written) and a
/// folder of images, shared by the predict tests. Images are larger than the model input, so that decoding, resizing
/// and the full-size overlays make a run last long enough to be killed in the middle.
/// </summary>
public sealed class PredictFixture : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("mambaad-predict").FullName;
    public string Checkpoint => Path.Combine(Dir, "ckpt");
    public string Images => Path.Combine(Dir, "in");

    /// <summary>Inputs whose names collide by stem or suffix (a/x.png, b/x.png, c/x_2.png) and plain ones.</summary>
    public static readonly string[] Names = ["a/x.png", "b/x.png", "c/x_2.png", "c/x.jpg", "d/deep/y.png", "d/z,1.png"];

    public PredictFixture()
    {
        TorchSharp.torch.manual_seed(3);
        using (var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }))
            MambaAD.Checkpoints.Checkpoint.Save(Checkpoint, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test",
                InputNormalization.ImageNet, ["any"], new Thresholds(0.5, 0.5, "unit test"), null, DateTime.UtcNow.ToString("O")));
        var rng = new Random(4);
        foreach (var name in Names.Concat(Enumerable.Range(0, 14).Select(i => $"e/{i:00}.png")))
        {
            int w = rng.Next(200, 300), h = rng.Next(200, 300);
            var rgb = new byte[w * h * 3];
            rng.NextBytes(rgb);
            var path = Path.Combine(Images, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, name.EndsWith(".jpg") ? ImageEncoder.Jpeg(rgb, w, h, 90) : ImageEncoder.PngRgb(rgb, w, h));
        }
    }

    public string P(params string[] parts) => Path.Combine([Dir, .. parts]);

    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}

[Collection("Console")]
public class PredictTests(PredictFixture f, ITestOutputHelper output) : IClassFixture<PredictFixture>
{
    private (int Code, string Out, string Err) Predict(string outDir, params string[] args) =>
        CliRunner.Run(["predict", "--checkpoint", f.Checkpoint, "--out", outDir, .. args]);

    /// <summary>The rows of DIR/scores.csv below its header, as fields (RFC 4180 quoting).</summary>
    internal static string[][] Rows(string dir) =>
        [.. File.ReadAllLines(Path.Combine(dir, "scores.csv")).Skip(1).Select(ParseCsv)];

    private static string[] ParseCsv(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted) { if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; } else if (c == '"') quoted = false; else field.Append(c); }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return [.. fields];
    }

    private static IEnumerable<string> Files(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(dir, p)).Where(p => p != "scores.csv").Order(StringComparer.Ordinal);

    [Fact]
    public void Every_input_gets_its_own_files_named_in_its_row()
    {
        var outDir = f.P("names");
        var (code, _, err) = Predict(outDir, "--save-maps", Path.Combine(f.Images, "a"), Path.Combine(f.Images, "b"), Path.Combine(f.Images, "c"), Path.Combine(f.Images, "d"));
        Assert.True(code == 0, err);
        Assert.Equal(ScoresCsv.Header, File.ReadLines(Path.Combine(outDir, "scores.csv")).First());
        var rows = Rows(outDir);
        Assert.Equal(PredictFixture.Names.Select(n => Path.Combine(f.Images, n)).Order(StringComparer.Ordinal), rows.Select(r => r[0]));
        foreach (var r in rows)
        {
            var name = Path.GetRelativePath(f.Images, r[0]).Replace('\\', '/');
            Assert.Equal([$"overlays/{name}.png", $"masks/{name}.png", $"maps/{name}.npy", ""], r[3..]);
            foreach (var file in r[3..6]) Assert.True(File.Exists(Path.Combine(outDir, file)), file);
        }
        // a/x.png, b/x.png, c/x_2.png and c/x.jpg: six inputs, six overlays, none written over another.
        Assert.Equal(PredictFixture.Names.Length, Directory.GetFiles(Path.Combine(outDir, "overlays"), "*", SearchOption.AllDirectories).Length);
        Assert.Equal(rows.Length, rows.Select(r => r[3]).Distinct().Count());
    }

    [Fact]
    public void Skip_bad_gives_unreadable_images_a_row_with_the_reason_and_goes_on()
    {
        var input = f.P("bad-in");
        Directory.CreateDirectory(input);
        File.Copy(Path.Combine(f.Images, "a", "x.png"), Path.Combine(input, "1.png"));
        File.WriteAllText(Path.Combine(input, "2.png"), "not a picture");
        File.Copy(Path.Combine(f.Images, "b", "x.png"), Path.Combine(input, "3.png"));

        var (code, stdout, err) = Predict(f.P("bad-out-1"), input);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains(Path.Combine(input, "2.png"), err);

        (code, stdout, err) = Predict(f.P("bad-out-2"), "--skip-bad", input);
        Assert.True(code == 0, err);
        var rows = Rows(f.P("bad-out-2"));
        Assert.Equal(["1.png", "2.png", "3.png"], rows.Select(r => Path.GetFileName(r[0])));
        Assert.Equal("", rows[1][1]);
        Assert.Contains("not a readable image", rows[1][6]);
        Assert.All(new[] { rows[0], rows[2] }, r => Assert.True(double.TryParse(r[1], System.Globalization.CultureInfo.InvariantCulture, out _)));
        Assert.Contains("1 unreadable", stdout);
        Assert.Contains($"warning: skipped {Path.Combine(input, "2.png")}", err);
    }

    [Fact]
    public void Out_that_is_a_file_is_refused_in_one_line()
    {
        var file = f.P("a-file");
        File.WriteAllText(file, "x");
        var (code, _, err) = Predict(file, Path.Combine(f.Images, "a"));
        Assert.Equal(2, code);
        Assert.Equal($"error: --out: {file} is a file: give a folder to write into", err.Trim());
        Assert.Equal("x", File.ReadAllText(file));
    }

    [Fact]
    public void Three_shards_concatenate_to_the_single_run_byte_for_byte()
    {
        // The Kubernetes Job's command line (deploy/predict-job.yaml), three pods.
        var single = f.P("single");
        var (code, _, err) = Predict(single, "--batch", "4", "--skip-bad", f.Images);
        Assert.True(code == 0, err);
        var parts = new List<byte>();
        var shardFiles = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var outDir = f.P("shards", $"shard-{i}");
            (code, _, err) = CliRunner.Run("predict", "--checkpoint", f.Checkpoint, "--shard", $"{i}/3", "--resume", "--skip-bad", "--batch", "4", "--out", outDir, f.Images);
            Assert.True(code == 0, err);
            parts.AddRange(File.ReadAllBytes(Path.Combine(outDir, "scores.csv")));
            shardFiles.AddRange(Files(outDir));
            Assert.True(Rows(outDir).Length > 0);
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(single, "scores.csv")), parts.ToArray());
        // The same files, under the same names, as the single run: no two shards write one name.
        Assert.Equal(Files(single), shardFiles.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_killed_predict_resumed_gives_the_uninterrupted_file()
    {
        var reference = f.P("uninterrupted");
        var (code, _, err) = Predict(reference, "--batch", "3", f.Images);
        Assert.True(code == 0, err);
        var want = File.ReadAllBytes(Path.Combine(reference, "scores.csv"));
        int total = Rows(reference).Length;

        // A real process, killed with SIGKILL as soon as it has written a few rows (wherever it is: between an
        // overlay and its row, in the middle of a batch).
        var killed = f.P("killed");
        int rowsAtKill = 0;
        for (int attempt = 0; attempt < 3 && rowsAtKill == 0; attempt++)
        {
            if (Directory.Exists(killed)) Directory.Delete(killed, true);
            using var p = StartCli("predict", "--checkpoint", f.Checkpoint, "--batch", "3", "--out", killed, f.Images);
            var scores = Path.Combine(killed, "scores.csv");
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3))
            {
                int rows = File.Exists(scores) ? File.ReadAllText(scores).Count(c => c == '\n') - 1 : 0;
                if (rows >= 4) { p.Kill(); break; }
                Thread.Sleep(5);
            }
            p.WaitForExit();
            int left = File.ReadAllText(scores).Count(c => c == '\n') - 1;
            if (left < total) rowsAtKill = left; // else it finished before the kill: try again
        }
        output.WriteLine($"killed with {rowsAtKill} of {total} rows written");
        Assert.InRange(rowsAtKill, 1, total - 1);
        Assert.NotEqual(want, File.ReadAllBytes(Path.Combine(killed, "scores.csv")));

        // A torn last line, as a kill in the middle of a write would leave: dropped on resume.
        File.AppendAllText(Path.Combine(killed, "scores.csv"), Path.Combine(f.Images, "e", "torn"));
        (code, var stdout, err) = Predict(killed, "--batch", "3", "--resume", f.Images);
        Assert.True(code == 0, err);
        Assert.Contains($"{total - rowsAtKill} scored, {rowsAtKill} kept from the earlier run", stdout);
        Assert.Equal(want, File.ReadAllBytes(Path.Combine(killed, "scores.csv")));
        Assert.Equal(Files(reference), Files(killed).Where(n => !Path.GetFileName(n).StartsWith('.'))); // temporary files of the kill aside
    }

    [Fact]
    public void Resume_refuses_a_scores_csv_of_other_inputs()
    {
        var outDir = f.P("other");
        var (code, _, err) = Predict(outDir, Path.Combine(f.Images, "a"));
        Assert.True(code == 0, err);
        (code, _, err) = Predict(outDir, "--resume", Path.Combine(f.Images, "b"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("written for other inputs", err);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(outDir, "scores.csv")).Length); // left as it was
    }

    /// <summary>
    /// --batch is the forward pass's size, as its help says (the server's sub-batches of 4 are for its deadline; a
    /// forward of 4 costs 4–8 % more per image than one of 8): 11 inputs at --batch 8 are two forwards, of 8 and 3.
    /// </summary>
    [Fact]
    public void The_forward_pass_takes_the_whole_batch()
    {
        using var loaded = Checkpoint.Load(f.Checkpoint);
        var model = new ForwardSizes(loaded.Model);
        using var predictor = new Predictor(model, loaded.Info, loaded.ModelPath);
        var files = Directory.GetFiles(Path.Combine(f.Images, "e"), "*.png").Order(StringComparer.Ordinal).Take(11).ToList();
        var summary = PredictionWriter.Write(predictor, files, f.P("forward-batch"), new PredictOptions(Batch: 8));
        Assert.Equal(11, summary.Scored);
        Assert.Equal([8, 3], model.Counts);
    }

    /// <summary>The model, recording the number of images of each forward pass.</summary>
    private sealed class ForwardSizes(IAnomalyModel inner) : IAnomalyModel
    {
        public List<int> Counts { get; } = [];
        public int ImageSize => inner.ImageSize;

        public AnomalyMaps Run(float[] images, int count, CancellationToken cancellationToken = default)
        {
            Counts.Add(count);
            return inner.Run(images, count, cancellationToken);
        }

        public void Dispose() { }   // the loaded checkpoint owns the model
    }

    [Fact]
    public void Shard_split_is_whole_batches_in_order()
    {
        // 10 inputs in 5 batches of 2: shards of 1, 2 and 2 batches.
        Assert.Equal((0, 2), new Shard(0, 3).Range(10, 2));
        Assert.Equal((2, 6), new Shard(1, 3).Range(10, 2));
        Assert.Equal((6, 10), new Shard(2, 3).Range(10, 2));
        Assert.Equal((0, 0), new Shard(0, 4).Range(2, 8)); // more shards than batches: some are empty
        Assert.Equal((0, 2), new Shard(3, 4).Range(2, 8));
        foreach (var bad in new[] { "3/3", "-1/2", "1", "a/b", "0/0" })
            Assert.Equal("Shard", Assert.Throws<MambaADException>(() => Shard.Parse(bad)).Setting);
    }

    /// <summary>The CLI beside the tests as a child process (what the ./mambaad wrapper execs).</summary>
    private static Process StartCli(params string[] args)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MambaAD.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }
}
