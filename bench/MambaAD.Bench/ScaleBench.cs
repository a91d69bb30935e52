using System.Globalization;
using MambaAD.Checkpoints;
using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.IO;
using MambaAD.Model;

namespace MambaAD.Bench;

/// <summary>
/// Generates the data of the dataset-scale memory measurements (README, "Evaluation in bounded memory"); the data is
/// written to a folder of your choice, never committed.
/// <c>-- scale-eval-data OUT [images] [classes] [size]</c>: an MVTec-layout dataset of small (32²) images with masks
/// and, for every test image, a smooth size² anomaly map (.npy) in OUT/maps, for <c>mambaad eval</c>
/// (20,000 × 256² by default: 5.2 GB of maps).
/// <c>-- scale-test-data OUT [images] [depths]</c>: the demo's procedural dataset at 64² with about that many test
/// images over four classes, and an untrained checkpoint of the demo's model (resnet18, 64², depths 3,4,6,3 unless
/// given) in OUT/ckpt, for <c>mambaad test</c>.
/// </summary>
internal static class ScaleBench
{
    public static int EvalData(string[] args)
    {
        if (args.Length < 1) { Console.Error.WriteLine("usage: scale-eval-data OUT [images] [classes] [size]"); return 2; }
        string root = Path.GetFullPath(args[0]);
        int images = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
        int classes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10;
        int size = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 256;
        const int side = 32;
        int perClass = images / classes;
        Parallel.For(0, classes * perClass, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, job =>
        {
            int c = job / perClass, i = job % perClass;
            var rng = new Random(job * 7919 + 13);
            string cls = $"class{c:00}", stem = i.ToString("D5", CultureInfo.InvariantCulture);
            bool defect = i % 2 == 1;
            string folder = defect ? "defect" : "good";
            var dataDir = Path.Combine(root, "data", cls);
            if (i == 0) Write(Path.Combine(dataDir, "train", "good", "00000.png"), ImageEncoder.PngRgb(Noise(rng, side * side * 3), side, side));
            Write(Path.Combine(dataDir, "test", folder, stem + ".png"), ImageEncoder.PngRgb(Noise(rng, side * side * 3), side, side));
            // The defect: a disc in the 32² mask, and a raised, blurred disc in the map at the same place.
            var mask = new byte[side * side];
            var map = new double[size * size];
            for (int k = 0; k < map.Length; k++) map[k] = rng.NextDouble();
            if (defect)
            {
                double cx = rng.Next(4, side - 4), cy = rng.Next(4, side - 4), r = rng.Next(2, 6);
                for (int y = 0; y < side; y++)
                    for (int x = 0; x < side; x++)
                        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) mask[y * side + x] = 255;
                double s = (double)size / side;
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                        if ((x / s - cx) * (x / s - cx) + (y / s - cy) * (y / s - cy) < r * r) map[y * size + x] += 1.5;
                Write(Path.Combine(dataDir, "ground_truth", folder, stem + "_mask.png"), ImageEncoder.PngGrey(mask, side, side));
            }
            Blur(map, size, size / 64 + 2);
            var values = new float[map.Length];
            for (int k = 0; k < map.Length; k++) values[k] = (float)(0.02 + 0.25 * map[k]);
            NpyArray.FromFloats(values, size, size).Write(Path.Combine(root, "maps", cls, folder, stem + ".npy"));
        });
        Console.WriteLine($"wrote {classes * perClass} test images of {classes} classes under {Path.Combine(root, "data")} and their {size}² maps under {Path.Combine(root, "maps")}");
        return 0;
    }

    /// <summary>
    /// <c>-- scale-exact DATA MAPS CLASS [size]</c>: one class's maps both ways — the exact reference (every map in
    /// memory) and the streaming evaluator — and the difference of each pixel metric (takes ~10 bytes per pixel).
    /// </summary>
    public static int Exact(string[] args)
    {
        if (args.Length < 3) { Console.Error.WriteLine("usage: scale-exact DATA MAPS CLASS [size]"); return 2; }
        int size = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 256;
        var ds = Data.Dataset.Open(args[0], new Data.DatasetOptions(Classes: [args[2]]));
        var maps = new List<float[]>();
        var masks = new List<byte[]>();
        var ev = new Evaluation.Evaluator(size, size);
        foreach (var s in ds.Test)
        {
            var map = NpyArray.Read(Path.Combine(args[1], s.ClassName, s.DefectType, s.Stem + ".npy")).ToFloatArray();
            var mask = s.MaskPath is null ? new byte[size * size] : Preprocess.Mask(s.MaskPath, size);
            ev.Add(s.ClassName, map, mask, s.IsFolderAnomalous);
            maps.Add(map);
            masks.Add(mask);
        }
        var streamed = ev.Evaluate();
        var exact = Evaluation.MetricTable.Pixel(maps, masks, size, size);
        var m = streamed.Classes[0].Value;
        Console.WriteLine($"{args[2]}: {maps.Count} maps of {size}², rounding {streamed.PixelRounding[args[2]]:G3}");
        foreach (var metric in new[] { Evaluation.Metric.PAuroc, Evaluation.Metric.PAp, Evaluation.Metric.PF1Max, Evaluation.Metric.AuPro })
            Console.WriteLine($"  {metric,-7} exact {100 * exact[metric]:F6}  streamed {100 * m[metric]!.Value:F6}  Δ×100 {100 * (m[metric]!.Value - exact[metric]):G3}");
        return 0;
    }

    public static int TestData(string[] args)
    {
        if (args.Length < 1) { Console.Error.WriteLine("usage: scale-test-data OUT [images] [depths]"); return 2; }
        string root = Path.GetFullPath(args[0]);
        int images = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2000;
        // Four classes of one normal folder and three defect types each: 16 folders of equal size.
        int perFolder = Math.Max(1, images / 16);
        var info = SyntheticDataset.Generate(Path.Combine(root, "data"), new SyntheticDatasetOptions(ImageSize: 64, TrainPerClass: 1,
            TestGoodPerClass: perFolder, TestDefectPerType: perFolder));
        int[] depths = args.Length > 2 ? [.. args[2].Split(',').Select(d => int.Parse(d, CultureInfo.InvariantCulture))] : [3, 4, 6, 3];
        var config = new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = depths };
        TorchSharp.torch.manual_seed(1);
        using var model = new MambaADModel(config);
        Checkpoint.Save(Path.Combine(root, "ckpt"), model, new CheckpointInfo(CheckpointInfo.CurrentFormat, config, "untrained",
            InputNormalization.ImageNet, info.ClassNames, null, null, DateTime.UtcNow.ToString("O")));
        Console.WriteLine($"wrote {info.TestCount} test images ({info.ClassNames.Count} classes, 64²) under {info.Root} and a checkpoint in {Path.Combine(root, "ckpt")}");
        return 0;
    }

    private static byte[] Noise(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static void Write(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Two passes of a separable box blur of radius r: a smooth map, as the Gaussian-filtered model maps are.</summary>
    private static void Blur(double[] a, int size, int r)
    {
        var t = new double[a.Length];
        for (int pass = 0; pass < 2; pass++)
        {
            for (int y = 0; y < size; y++) BoxLine(a, t, y * size, 1, size, r);
            for (int x = 0; x < size; x++) BoxLine(t, a, x, size, size, r);
        }
    }

    private static void BoxLine(double[] src, double[] dst, int start, int step, int n, int r)
    {
        double sum = 0;
        int count = 0;
        for (int k = 0; k < Math.Min(r, n); k++) { sum += src[start + k * step]; count++; }
        for (int k = 0; k < n; k++)
        {
            if (k + r < n) { sum += src[start + (k + r) * step]; count++; }
            if (k - r - 1 >= 0) { sum -= src[start + (k - r - 1) * step]; count--; }
            dst[start + k * step] = sum / count;
        }
    }
}
