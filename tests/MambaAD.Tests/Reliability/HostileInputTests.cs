using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.IO;
using MambaAD.Model;
using MambaAD.Tests.CommandLine;
using MambaAD.Tests.Data;
using SkiaSharp;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// Every input is bounded before it is allocated, and every error a user can cause is one line: image headers that
/// lie (PNG, 16-bit PNG, JPEG, BMP, WebP, GIF), .npy headers and values, ADer meta.json names and labels, output
/// paths of the wrong kind. The memory bombs also run through real processes, whose peak RSS is measured.
/// </summary>
[Collection("Torch")]
public sealed class HostileInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-hostile").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private string P(params string[] parts) => Path.Combine([_dir, .. parts]);

    /// <summary>The image corpus: name → (file bytes or a writer, the expected message part).</summary>
    private Dictionary<string, (string Path, string Expected)> WriteImageBombs(string folder)
    {
        Directory.CreateDirectory(folder);
        var files = new Dictionary<string, (byte[]? Bytes, string Expected)>
        {
            ["png-30000"] = (CraftedFiles.Png(30000, 30000, 8, 2, new byte[64]), "the image is 30000×30000 (900 megapixels), more than the limit of 67.1 megapixels"),
            ["png-width-0"] = (CraftedFiles.Png(0, 10, 8, 2, new byte[64]), ""),
            ["grey16-width-0"] = (CraftedFiles.Png(0, 10, 16, 0, new byte[64]), "the image declares no pixels (0×10)"),
            ["grey16-100000"] = (CraftedFiles.Png(100000, 100000, 16, 0, new byte[64]), "the image is 100000×100000"),
            ["grey16-2p31"] = (CraftedFiles.Png(0x80000000, 4, 16, 0, new byte[64]), "the image is 2147483648×4"),
            ["jpeg-60000"] = (CraftedFiles.JpegDeclaring(60000, 60000), "the image is 60000×60000"),
            ["bmp-50000"] = (CraftedFiles.BmpDeclaring(50000, 50000), ""),
            ["webp-16384"] = (CraftedFiles.WebpDeclaringMax(), "the image is 16384×16384"),
            ["gif-65535"] = (CraftedFiles.GifDeclaringMax(), ""),
            ["zero-bytes"] = ([], "the image file is empty (0 bytes)"),
            ["truncated"] = (CraftedFiles.Encoded(64, 64, SKEncodedImageFormat.Png)[..100], ""),
            ["real-12000"] = (null, "the image is 12000×12000 (144 megapixels)"),
        };
        var result = new Dictionary<string, (string, string)>();
        foreach (var (name, (bytes, expected)) in files)
        {
            var path = Path.Combine(folder, name + (name.StartsWith("jpeg") ? ".jpg" : name.StartsWith("bmp") ? ".bmp" : name.StartsWith("webp") ? ".webp" : name.StartsWith("gif") ? ".gif" : ".png"));
            if (bytes is null) CraftedFiles.WriteHugeGreyPng(path, 12000);
            else File.WriteAllBytes(path, bytes);
            result[name] = (path, expected);
        }
        return result;
    }

    /// <summary>An untrained checkpoint of the tiny configuration (64², resnet18, depths 2-2-2-2).</summary>
    internal static string TinyCheckpoint(string dir, string[]? classes = null)
    {
        TorchSharp.torch.manual_seed(2);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        Checkpoint.Save(dir, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test", InputNormalization.ImageNet, classes ?? ["bottle"], null, null, "now"));
        return dir;
    }

    [Fact]
    public void Image_bombs_are_refused_from_their_header_in_one_line()
    {
        foreach (var (name, (path, expected)) in WriteImageBombs(P("bombs")))
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var e = Assert.Throws<MambaADException>(() => ImageDecoder.DecodeRgb(path));
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            Assert.Contains(path + ": ", e.Message);
            if (expected.Length > 0) Assert.Contains(expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.True(allocated < 16 << 20, $"{name}: {allocated >> 20} MB allocated before refusing");
        }
        // The same through the decoder of bytes (the server's path).
        var bomb = CraftedFiles.Png(30000, 30000, 8, 2, new byte[64]);
        Assert.Contains("more than the limit", Assert.Throws<MambaADException>(() => RgbImage.Decode(bomb, "upload")).Message);
    }

    [Fact]
    public void The_pixel_limit_is_an_option()
    {
        var ok = P("ok.png");
        File.WriteAllBytes(ok, CraftedFiles.Encoded(120, 100, SKEncodedImageFormat.Png));
        Assert.Equal(120, ImageDecoder.DecodeRgb(ok).Width);
        var saved = ImageLimits.MaxPixels;
        try
        {
            ImageLimits.MaxPixels = 10_000;
            var e = Assert.Throws<MambaADException>(() => ImageDecoder.DecodeRgb(ok));
            Assert.Equal(ImageLimits.Setting, e.Setting);
            Assert.Contains("the image is 120×100 (12000 pixels), more than the limit of 10000 pixels", e.Message);
            Assert.Throws<MambaADException>(() => ImageLimits.MaxPixels = 0);
            Assert.Throws<MambaADException>(() => ImageLimits.MaxPixels = ImageLimits.HighestMaxPixels + 1);
        }
        finally
        {
            ImageLimits.MaxPixels = saved;
        }
        // Through the CLI: the option names itself in the error.
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var ckpt = TinyCheckpoint(P("ckpt"));
        try
        {
            var (code, _, err) = CliRunner.Run("test", "--checkpoint", ckpt, "--data", d.Root, "--max-image-pixels", "100");
            Assert.Equal(2, code);
            Assert.Matches("^error: --max-image-pixels: /.*: the image is 40×30 \\(1200 pixels\\), more than the limit of 100 pixels", err.Trim());
        }
        finally
        {
            ImageLimits.MaxPixels = ImageLimits.DefaultMaxPixels;
        }
    }

    [Fact]
    public void Bombs_through_real_processes_stay_within_bounded_memory()
    {
        // A tiny dataset whose test split also holds every image bomb; a tiny untrained checkpoint.
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var bombs = WriteImageBombs(d.P("bottle", "test", "good"));
        var ckpt = TinyCheckpoint(P("ckpt"));
        var peaks = new List<string>();

        // Images: test --skip-bad lists each bomb as a warning and goes on.
        var (code, p) = CliProcess.Run(["test", "--checkpoint", ckpt, "--data", d.Root, "--skip-bad", "--batch", "4"]);
        using (p)
        {
            Assert.True(code == 0, $"exit {code}; {p.Transcript()}");
            foreach (var (name, (path, _)) in bombs)
                Assert.Contains(p.Stderr, l => l.StartsWith($"warning: {path}: "));
            Assert.DoesNotContain(p.Stderr, l => l.TrimStart().StartsWith("at "));
            peaks.Add($"image bombs (test --skip-bad, {bombs.Count} files): {p.PeakRssMb:F0} MB");
            Assert.True(p.PeakRssMb < 1000, $"peak RSS {p.PeakRssMb:F0} MB with image bombs (a 12000² decode alone takes 1 GB)");
        }

        // Without --skip-bad: the first bomb stops the test with one line naming it and the option.
        (code, p) = CliProcess.Run(["test", "--checkpoint", ckpt, "--data", d.Root, "--batch", "4"]);
        using (p)
        {
            Assert.True(code == 2, $"exit {code}; {p.Transcript()}");
            var line = Assert.Single(p.Stderr);
            Assert.Matches("^error: (--max-image-pixels: )?/.*", line);
        }

        // A checkpoint declaring a 256 GB tensor; a safetensors header of 0x7FFFFFFF bytes; a .npy header of 0xFFFFFFF0.
        var huge = P("huge.pth");
        CraftedFiles.WriteTorchZip(huge, new CraftedFiles.Pickle().EmptyDict().Str("w").Tensor("0", 1L << 36, [1L << 18, 1L << 18], [1L << 18, 1]).SetItem().Stop(),
            new Dictionary<string, byte[]> { ["0"] = new byte[16] });
        var header = P("header.safetensors");
        File.WriteAllBytes(header, CraftedFiles.Safetensors("{}", new byte[16], 0x7FFFFFFF));
        foreach (var (stem, defect) in new[] { ("000", "good"), ("001", "good"), ("000", "scratch"), ("001", "scratch") })
        {
            Directory.CreateDirectory(P("maps", "bottle", defect));
            File.WriteAllBytes(P("maps", "bottle", defect, stem + ".npy"),
                CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", new byte[64], major: 2, declaredHeaderLength: 0xFFFFFFF0));
        }
        using var plain = new TinyData("plain");
        plain.MvtecClass("bottle");
        foreach (var (what, args, expected) in new[]
                 {
                     ("a 256 GB tensor", new[] { "test", "--checkpoint", huge, "--data", plain.Root }, "declares a tensor storage of 274877906944 bytes"),
                     ("a 0x7FFFFFFF safetensors header", new[] { "train", "--data", plain.Root, "--out", P("run"), "--encoder-weights", header, "--image-size", "64" }, "declares a header of 2147483647 bytes"),
                     ("a 0xFFFFFFF0 .npy header", new[] { "eval", "--data", plain.Root, "--maps", P("maps") }, "declares a header of 4294967280 bytes"),
                 })
        {
            (code, p) = CliProcess.Run(args);
            using (p)
            {
                Assert.True(code == 2, $"{what}: exit {code}; {p.Transcript()}");
                var line = Assert.Single(p.Stderr);
                Assert.StartsWith("error: ", line);
                Assert.Contains(expected, line);
                peaks.Add($"{what}: {p.PeakRssMb:F0} MB");
                Assert.True(p.PeakRssMb < 1000, $"{what}: peak RSS {p.PeakRssMb:F0} MB");
            }
        }
        Console.WriteLine("peak RSS: " + string.Join("; ", peaks));
    }

    [Fact]
    public void Npy_headers_and_values_are_checked()
    {
        var cases = new (string Name, byte[] Bytes, string Expected)[]
        {
            ("v2-header", CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", CraftedFiles.Floats(1, 2), 2, 0xFFFFFFF0), "declares a header of 4294967280 bytes"),
            ("inf", CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", CraftedFiles.Floats(1, float.PositiveInfinity, 2)), "element 1 is +Inf"),
            ("nan", CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", CraftedFiles.Floats(float.NaN, 1)), "element 0 is NaN"),
            ("overflow", CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }", []), "more elements than any file holds"),
            ("truncated", CraftedFiles.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }", new byte[16]), "the header declares 4000000 bytes of data, the file holds 16"),
            ("unicode", CraftedFiles.Npy("{'descr': '<U99999999', 'fortran_order': False, 'shape': (1,), }", []), "has dtype '<U99999999'"),
            ("no-descr", CraftedFiles.Npy("{'fortran_order': False, 'shape': (1,), 'descr':", []), "unreadable 'descr'"),
        };
        foreach (var (name, bytes, expected) in cases)
        {
            var path = P(name + ".npy");
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<MambaADException>(() => NpyArray.Read(path).ToDoubleArray());
            Assert.Contains(path, e.Message);
            Assert.Contains(expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }

        // Through eval: an anomaly map with +Inf is one line naming it (before: accepted, and P-AP/AU-PRO collapsed).
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        foreach (var (defect, stem) in new[] { ("good", "000"), ("good", "001"), ("scratch", "000"), ("scratch", "001") })
        {
            var values = Enumerable.Range(0, 30 * 40).Select(i => (float)(i % 7) / 7).ToArray();
            if (defect == "scratch" && stem == "001") values[5] = float.PositiveInfinity;
            NpyArray.FromFloats(values, 30, 40).Write(P("maps", "bottle", defect, stem + ".npy"));
        }
        var (code, _, err) = CliRunner.Run("eval", "--data", d.Root, "--maps", P("maps"), "--image-size", "64");
        Assert.Equal(2, code);
        Assert.Equal($"error: {P("maps", "bottle", "scratch", "001.npy")}: element 5 is +Inf; only finite numbers are read (an anomaly map with NaN or Inf has no ranking)" +
            "; add --skip-bad to leave such files out (listed as warnings) and go on", err.Trim());
    }

    private string MetaDataset(string cls, string specie, string anomaly)
    {
        var root = P("meta-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (var f in new[] { "train/0.png", "test/0.png", "test/1.png", "mask/1.png" })
            TinyData.WriteImage(Path.Combine(root, f), 40, 30);
        TinyData.WriteMask(Path.Combine(root, "mask/1.png"), 40, 30, 5, 5, 15, 15);
        string Record(string img, string mask, string specieName, string label) =>
            $"{{\"img_path\": \"{img}\", \"mask_path\": \"{mask}\", \"cls_name\": \"x\", \"specie_name\": \"{specieName}\", \"anomaly\": {label}}}";
        File.WriteAllText(Path.Combine(root, "meta.json"),
            $"{{\"train\": {{\"{cls}\": [{Record("train/0.png", "", "good", "0")}]}}, " +
            $"\"test\": {{\"{cls}\": [{Record("test/0.png", "", "good", "0")}, {Record("test/1.png", "mask/1.png", specie, anomaly)}]}}}}");
        return root;
    }

    [Fact]
    public void Meta_json_names_never_leave_the_output_folder_and_labels_are_read_exactly()
    {
        foreach (var (cls, specie, anomaly, expected) in new[]
                 {
                     ("../../x", "scratch", "1", "the class name '../../x' is not a plain name"),
                     ("/tmp/evil", "scratch", "1", "the class name '/tmp/evil' is not a plain name"),
                     ("bottle", "../../escape", "1", "the specie_name '../../escape' is not a plain name"),
                     ("bottle", "scratch", "1.5", "has \"anomaly\": 1.5; expected 0 (normal) or 1 (anomalous)"),
                     ("bottle", "scratch", "\"yes\"", "has \"anomaly\": \"yes\""),
                 })
        {
            var e = Assert.Throws<MambaADException>(() => Dataset.Open(MetaDataset(cls, specie, anomaly)));
            Assert.Contains(expected, e.Message);
            Assert.Contains("meta.json", e.Message);
        }
        var ds = Dataset.Open(MetaDataset("bottle", "scratch", "true"));
        var defect = Assert.Single(ds.Test, s => s.IsFolderAnomalous);  // before: true was read as normal
        Assert.Equal("scratch", defect.DefectType);
        Assert.NotNull(defect.MaskPath);

        // The shared guard used where maps are written.
        var root = P("out");
        Assert.Equal(Path.Combine(root, "a", "good", "x.npy"), OutputPath.Under(root, "a", "good", "x.npy"));
        foreach (var bad in new[] { "..", "../x", "/etc", "a/b", "", ".", "a\\b" })
            Assert.Throws<MambaADException>(() => OutputPath.Under(root, "cls", bad));
    }

    [Fact]
    public void Output_paths_of_the_wrong_kind_are_one_line_before_any_work()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var folder = P("a-folder");
        Directory.CreateDirectory(folder);
        var file = P("a-file");
        File.WriteAllText(file, "x");
        var missing = P("no-checkpoint");
        foreach (var (args, expected) in new[]
                 {
                     (new[] { "test", "--checkpoint", missing, "--data", d.Root, "--json", folder }, $"error: --json: {folder} is a folder: give a file path to write"),
                     (new[] { "test", "--checkpoint", missing, "--data", d.Root, "--csv", folder }, $"error: --csv: {folder} is a folder: give a file path to write"),
                     (new[] { "test", "--checkpoint", missing, "--data", d.Root, "--save-maps", file }, $"error: --save-maps: {file} is a file: give a folder to write into"),
                     (new[] { "test", "--checkpoint", missing, "--data", d.Root, "--report", Path.Combine(file, "r.html") }, $"error: --report: cannot write {Path.Combine(file, "r.html")}: {file} is a file, not a folder"),
                     (new[] { "eval", "--data", d.Root, "--maps", folder, "--json", folder }, $"error: --json: {folder} is a folder: give a file path to write"),
                     (new[] { "demo", "--out", file }, $"error: --out: {file} is a file: give a folder to write into"),
                 })
        {
            var (code, _, err) = CliRunner.Run(args);
            Assert.Equal(2, code);
            Assert.Equal(expected, err.Trim());
        }
    }
}
