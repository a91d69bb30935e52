using System.Diagnostics;
using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.IO;

namespace MambaAD.Bench;

/// <summary>
/// Timing harness for the official metrics (not a test: tests never time).
/// <c>dotnet run -c Release --project bench/MambaAD.Bench -- eval [images] [size]</c>: one class of synthetic maps and
/// masks (default 200 images at 256², half of them with 1–4 blobs), the full 7-metric evaluation, median of 5 runs,
/// and the share of each part measured in the same run.
/// <c>-- synth-maps DATA OUT [seed]</c>: writes random 64×64 .npy maps for every test image of a dataset (to try
/// <c>mambaad eval</c> on real layouts).
/// </summary>
internal static class EvalBench
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0]) : 200, size = args.Length > 1 ? int.Parse(args[1]) : 256;
        var rng = new Random(20261129);
        var maps = new List<float[]>();
        var masks = new List<byte[]>();
        for (int i = 0; i < n; i++)
        {
            var mask = new byte[size * size];
            if (i % 2 == 1)
                for (int b = rng.Next(1, 5); b > 0; b--)
                {
                    int cx = rng.Next(size), cy = rng.Next(size), r = rng.Next(3, size / 8);
                    for (int y = Math.Max(0, cy - r); y < Math.Min(size, cy + r); y++)
                        for (int x = Math.Max(0, cx - r); x < Math.Min(size, cx + r); x++)
                            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) mask[y * size + x] = 1;
                }
            masks.Add(mask);
            maps.Add(mask.Select(m => (float)(rng.NextDouble() * 0.6 + m * 0.5)).ToArray());
        }
        Console.WriteLine($"AU-PRO/metrics benchmark: 1 class, {n} images at {size}², {Environment.ProcessorCount} cores");
        var parts = new (string Name, Action Body)[]
        {
            ("P-AUROC + P-AP (radix curve)", () => Metrics.PixelCurve(maps, masks)),
            ("P-F1max (21 thresholds)", () => Metrics.PixelF1Max(maps, masks)),
            ("AU-PRO (100 thresholds)", () => Metrics.AuPro(maps, masks, size, size)),
            ("Evaluator.Evaluate (all 7)", () =>
            {
                var ev = new Evaluator(size, size);
                for (int i = 0; i < n; i++) ev.Add("c", maps[i], masks[i], i % 2 == 1);
                ev.Evaluate();
            }),
        };
        var medians = new double[parts.Length];
        for (int p = 0; p < parts.Length; p++)
        {
            parts[p].Body(); // warm-up (JIT)
            var times = new List<double>();
            for (int r = 0; r < 5; r++)
            {
                var sw = Stopwatch.StartNew();
                parts[p].Body();
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            medians[p] = times[2];
        }
        double total = medians[^1];
        for (int p = 0; p < parts.Length; p++)
            Console.WriteLine($"  {parts[p].Name,-32} {medians[p],8:F1} ms  ({medians[p] / total:P0} of the full evaluation)");
        Console.WriteLine($"  throughput: {(double)n * size * size / (total / 1000) / 1e6:F1} M pixels/s for all 7 metrics");
        return 0;
    }

    public static int SynthMaps(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: synth-maps DATA OUT [seed]"); return 2; }
        var ds = Dataset.Open(args[0]);
        var rng = new Random(args.Length > 2 ? int.Parse(args[2]) : 0);
        foreach (var s in ds.Test)
        {
            var map = new float[64 * 64];
            for (int i = 0; i < map.Length; i++) map[i] = (float)rng.NextDouble();
            NpyArray.FromFloats(map, 64, 64).Write(Path.Combine(args[1], s.ClassName, s.DefectType, s.Stem + ".npy"));
        }
        Console.WriteLine($"wrote {ds.Test.Count} random 64×64 maps for {ds.Layout} layout ({string.Join(", ", ds.ClassNames)}) to {args[1]}");
        return 0;
    }
}
