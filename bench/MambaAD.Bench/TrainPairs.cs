using MambaAD.Benchmarks;
using MambaAD.Ssm;
using static TorchSharp.torch;
using static MambaAD.Bench.BenchArgs;

namespace MambaAD.Bench;

/// <summary>
/// Issue 14's training ratio round by round: <c>dotnet run -c Release --project bench/MambaAD.Bench -- pairs [--rounds 8]
/// [--batch 8] [--train-batch 16] [--size 256]</c> (ResNet34, random weights). Each round times a training step from the
/// images, a step from kept encoder features and an inference pass, as <c>mambaad bench</c> does, and prints both steps ÷
/// that pass; then the medians over the rounds and best ÷ best, the figure <c>mambaad bench</c> prints from fewer rounds.
/// The three of a round share the machine's conditions, so the per-round ratios hold through this VM's slow spells
/// better than single bench runs do (docs/performance.md, phase 30).
/// </summary>
internal static class TrainPairs
{
    public static int Run(string[] args)
    {
        int rounds = int.Parse(Opt(args, "--rounds", "8")), batch = int.Parse(Opt(args, "--batch", "8"));
        int trainBatch = int.Parse(Opt(args, "--train-batch", "16")), size = int.Parse(Opt(args, "--size", "256"));
        Console.WriteLine($"training ÷ inference per image, round by round: ResNet34 {size}², training batch {trainBatch}, " +
                          $"inference batch {batch}, {get_num_threads()} threads, width {ScanKernels.HardwareWidth}");
        var all = ModelBenchmark.TrainingRounds(Encoders.Backbone.ResNet34, size, batch, trainBatch, rounds);
        Console.WriteLine($"{"round",5} {"step",9} {"kept",9} {"inference",10} {"step ÷ inf",10} {"kept ÷ inf",10}   (ms/image)");
        for (int i = 0; i < all.Count; i++)
        {
            var r = all[i];
            Console.WriteLine($"{i,5} {r.StepMsPerImage,9:F1} {r.CachedStepMsPerImage,9:F1} {r.InferenceMsPerImage,10:F1} " +
                              $"{r.StepRatio,10:F2} {r.CachedStepRatio,10:F2}");
        }
        double bestInference = all.Min(r => r.InferenceMsPerImage);
        Console.WriteLine($"median of the rounds: from the images {Median(all.Select(r => r.StepRatio)):F2} ×, " +
                          $"from kept features {Median(all.Select(r => r.CachedStepRatio)):F2} ×");
        Console.WriteLine($"best ÷ best: from the images {all.Min(r => r.StepMsPerImage) / bestInference:F2} ×, " +
                          $"from kept features {all.Min(r => r.CachedStepMsPerImage) / bestInference:F2} × (target ≤ 2.5)");
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
