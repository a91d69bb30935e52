using System.CommandLine;
using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Training;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad train</c>: one model for all classes of a dataset, the official recipe by default (a thin layer over <see cref="Trainer"/>).</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new DataOptions("Dataset root (MVTec AD, VisA, MPDD, BTAD, MVTec 3D-AD, Uni-Medical, Real-IAD, ADer meta.json or plain folders; detected automatically)", required: false);
        var outDir = new Option<string?>("--out") { Description = "Run folder: last/ and best/ checkpoints (model.pth + model.json) and metrics.jsonl" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder from last/ (optimizer, RNG and position restored; other options are ignored)" };
        var weights = new Option<string>("--encoder-weights")
        { Description = "Encoder ImageNet weights: 'embedded' (the packaged ResNet18; the default backbone is then resnet18) or a .pth/.safetensors file (timm resnet34.bt_in1k, torchvision, or an official MambaAD checkpoint)", DefaultValueFactory = _ => "embedded" };
        var model = new ModelOptions();
        var epochs = new Option<int>("--epochs") { Description = "Epochs (the official configs use 1000 on a GPU; ADer's benchmark 100)", DefaultValueFactory = _ => 100 };
        var iterations = new Option<int?>("--iterations") { Description = "Train this many iterations instead of --epochs" };
        var minutes = new Option<double?>("--minutes") { Description = "Time budget for the optimisation (tests excluded): the planned iterations shrink to fit, the learning-rate decay stays at 80 %" };
        var batch = new Option<int>("--batch") { Description = "Batch size (drop_last)", DefaultValueFactory = _ => 16 };
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate; ×0.1 at 80 % of the iterations", DefaultValueFactory = _ => 0.005 };
        var seed = new Option<int>("--seed") { Description = "Random seed (initialisation, shuffling, drop-path)", DefaultValueFactory = _ => 42 };
        var testEvery = new Option<int?>("--test-every") { Description = "Test every N epochs (default: 20 tests per run, as the official trainer; 0: only at the end)" };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu, or cuda with a CUDA build of libtorch", DefaultValueFactory = _ => "cpu" };
        var workers = new Option<int>("--workers") { Description = "Parallel image decoders (0: one per core)", DefaultValueFactory = _ => 0 };
        var featureCache = new Option<double?>("--feature-cache")
        { Description = "GB of memory for keeping the encoder's features of the training images after their first epoch, so later epochs skip the encoder and the image decoding (same weights; 1.75 MB per 256² image). When they do not all fit, they go to a temporary file in the run folder if its disk has room. Default: a third of the memory; 0: no cache" };
        var calibrate = new Option<bool>("--calibrate") { Description = "After training, choose thresholds from the final test and store them in last/ (use mambaad calibrate for best/)" };
        var display = ProgressDisplay.Option();

        var command = new Command("train", "Train one MambaAD model on the normal images of all selected classes (spec §11, §13).")
        { outDir, resume, weights, epochs, iterations, minutes, batch, lr, seed, testEvery, threads, device, workers, featureCache, calibrate, display };
        data.AddTo(command);
        model.AddTo(command);
        command.SetAction((parse, ct) => Task.FromResult(Run(parse, ct)));
        return command;

        int Run(ParseResult parse, CancellationToken ct)
        {
            var mode = parse.GetValue(display);
            TrainResult result;
            if (parse.GetValue(resume) is { } runDir)
            {
                data.ApplyImageLimit(parse);
                Console.WriteLine($"resuming {runDir}");
                result = ProgressDisplay.Run(mode, p => Trainer.Resume(runDir, p, ct, parse.GetValue(data.SkipBad)));
            }
            else
            {
                var root = data.Root(parse) ?? throw new MambaADException("--data is required (or --resume RUN_DIR)");
                var dir = parse.GetValue(outDir) ?? throw new MambaADException("--out is required: the run folder for checkpoints and logs");
                var weightsPath = parse.GetValue(weights)!;
                var config = model.Read(parse, weightsPath == "embedded" ? Backbone.ResNet18 : null);
                var options = new TrainingOptions
                {
                    Epochs = parse.GetValue(epochs), Iterations = parse.GetValue(iterations), BatchSize = parse.GetValue(batch),
                    TimeLimit = parse.GetValue(minutes) is { } m ? TimeSpan.FromMinutes(m) : null,
                    LearningRate = parse.GetValue(lr), Seed = parse.GetValue(seed), TestEvery = parse.GetValue(testEvery),
                    Threads = parse.GetValue(threads), Device = parse.GetValue(device)!, Workers = parse.GetValue(workers),
                    FeatureCacheGb = parse.GetValue(featureCache),
                };
                var request = new TrainRequest(root, dir, config, weightsPath, options, data.Read(parse));
                Console.WriteLine($"training MambaAD ({config}) on {root} → {dir}");
                if (Util.NativeAllocator.Advice is { } advice && Environment.GetEnvironmentVariable("MAMBAAD_ALLOCATOR") != "glibc")
                    Console.WriteLine($"  on glibc's malloc: {advice}; MAMBAAD_ALLOCATOR=glibc hides this");
                result = ProgressDisplay.Run(mode, p => Trainer.Train(request, p, ct));
            }
            if (!result.Completed)
            {
                // Program turns this into 128 + the signal (130 for SIGINT, 143 for SIGTERM).
                Console.WriteLine($"interrupted: the exact position is saved in {result.LastCheckpoint}; continue with: mambaad train --resume {result.RunDir}");
                return 130;
            }
            if (result.LastTest is { } test) Console.Write(test.Result.ToTable());
            if (parse.GetValue(calibrate) && result.LastTest is { } t)
                CalibrateCommand.Store(result.LastCheckpoint, Inference.Calibration.Choose(t));
            Console.WriteLine($"last checkpoint: {result.LastCheckpoint} (the final state)");
            Console.WriteLine(result.BestCheckpoint is { } b
                ? $"best checkpoint: {b} (highest mean mAD over the tests during training; the paper does not say which it reports)"
                : "best checkpoint: none (no test images)");
            return 0;
        }
    }
}
