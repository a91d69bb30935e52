using System.CommandLine;
using MambaAD.Demo;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad demo</c>: the whole job on an embedded default, in minutes on a CPU (a thin layer over <see cref="DemoRun"/>).</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "Output folder: data/ (generated images), run/ (checkpoints, metrics.jsonl), predictions/", DefaultValueFactory = _ => "mambaad-demo" };
        var minutes = new Option<double>("--minutes") { Description = "Training time budget in minutes (dataset generation, testing and prediction come on top)", DefaultValueFactory = _ => 5 };
        var seed = new Option<int>("--seed") { Description = "Seed of the generated dataset and of training", DefaultValueFactory = _ => 42 };
        var size = new Option<int>("--image-size") { Description = "Model input size (the official 256 learns less in a few CPU minutes)", DefaultValueFactory = _ => 64 };
        var display = ProgressDisplay.Option();
        var command = new Command("demo", "Generate a small multi-class defect dataset, train one MambaAD model on it with the embedded ImageNet ResNet18, test, calibrate and predict — in a few minutes on a CPU.")
        { outDir, minutes, seed, size, display };
        command.SetAction((parse, ct) =>
        {
            var options = new DemoOptions(IO.OutputPath.Folder(parse.GetValue(outDir)!, "OutDir"), parse.GetValue(minutes), parse.GetValue(seed), parse.GetValue(size));
            var r = ProgressDisplay.Run(parse.GetValue(display), p => DemoRun.Run(options, p, Console.WriteLine, ct));
            Console.WriteLine();
            Console.Write(r.Test.Result.ToTable());
            Console.WriteLine($"thresholds: image {r.Thresholds.Image:G4}, pixel {r.Thresholds.Pixel:G4} ({r.Thresholds.Method})");
            foreach (var (file, p) in r.Predictions)
                Console.WriteLine($"  {p.Score,8:F4}  {(p.IsAnomalous == true ? "ANOMALOUS" : "normal   ")}  {Path.GetRelativePath(options.OutDir, file)}");
            Console.WriteLine();
            Console.WriteLine($"done in {r.Elapsed:mm\\:ss}. Outputs:");
            Console.WriteLine($"  dataset      {Path.GetFullPath(r.Data.Root)}");
            Console.WriteLine($"  checkpoint   {Path.GetFullPath(r.Training.LastCheckpoint)}  (model.pth loads in the official code; model.json has the thresholds)");
            Console.WriteLine($"  metrics log  {Path.GetFullPath(Path.Combine(r.Training.RunDir, "metrics.jsonl"))}");
            Console.WriteLine($"  predictions  {Path.GetFullPath(r.PredictionsDir)}  (scores.csv, overlays/, masks/)");
            Console.WriteLine($"  report       {Path.GetFullPath(r.ReportPath)}  (metrics, curves, histograms, heat-map gallery; opens offline)");
            Console.WriteLine($"next: mambaad predict --checkpoint {r.Training.LastCheckpoint} YOUR_IMAGES…");
            return Task.FromResult(r.Training.Completed ? 0 : 130);
        });
        return command;
    }
}
