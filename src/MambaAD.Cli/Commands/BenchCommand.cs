using System.CommandLine;
using System.Text.Json;
using MambaAD.Benchmarks;
using MambaAD.IO;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad bench</c>: whole-model speed and memory, measured in one run (a thin layer over <see cref="ModelBenchmark"/>).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var backbone = new Option<string>("--backbone") { Description = "resnet34 or resnet18", DefaultValueFactory = _ => "resnet34" };
        var size = new Option<int>("--image-size") { Description = "Input side", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "Inference batch", DefaultValueFactory = _ => 8 };
        var trainBatch = new Option<int>("--train-batch") { Description = "Training batch", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0: default, one per core)", DefaultValueFactory = _ => 0 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions per measurement (the best is reported; encoder and model alternate)", DefaultValueFactory = _ => 5 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file" };
        var command = new Command("bench", "Measure inference (encoder alone and whole model), the scan kernel, and a training step, in one run; print ratios.")
        { backbone, size, batch, trainBatch, threads, repeats, json };
        command.SetAction(parse =>
        {
            if (parse.GetValue(threads) is > 0 and var t) TorchSharp.torch.set_num_threads(t);
            var r = ModelBenchmark.Run(ModelOptions.ParseBackbone(parse.GetValue(backbone)!), parse.GetValue(size), parse.GetValue(batch), parse.GetValue(trainBatch),
                parse.GetValue(repeats), m => Console.Error.WriteLine(m));
            Console.WriteLine($"MambaAD bench: {r.Backbone}, {r.ImageSize}², {r.Scan}, inference batch {r.Batch}, training batch {r.TrainBatch}, {r.Threads} threads on {r.ProcessorCount} CPUs, {Util.NativeAllocator.Describe()}, GEMMs: {Util.MklVendorCheck.State}, native ISA: {Util.NativeIsaLimit.State}, our kernels: {Ssm.ScanWorkers.Describe()}");
            Console.WriteLine($"  encoder_ms_per_image  {r.EncoderMsPerImage,10:F1}");
            Console.WriteLine($"  model_ms_per_image    {r.ModelMsPerImage,10:F1}");
            Console.WriteLine($"  ratio                 {r.Ratio,10:F2}   (model ÷ encoder; target ≤ 3.5)");
            Console.WriteLine($"  scan_ns_per_step      {r.ScanNsPerStep,10:F2}   " + (double.IsNaN(r.ScanPortBoundNs)
                ? "(scalar kernel: no port bound counted)"
                : $"({r.ScanTimesBound:F2} × its port bound of {r.ScanPortBoundNs:F2} ns at {r.KernelWidth} lanes, measured alternately; target ≤ 1.3 ×)"));
            Console.WriteLine($"  train_ms_per_image    {r.TrainMsPerImage,10:F1}   ({r.TrainRatio:F2} × inference, timed alternately with it; target ≤ 2.5)");
            Console.WriteLine($"  train_cached_ms_per_image {r.TrainCachedMsPerImage,6:F1}   ({r.TrainCachedRatio:F2} × inference: the step from kept encoder features, every epoch after the first when they fit)");
            Console.WriteLine($"  train_peak_rss_mb     {r.TrainPeakRssMb,10:F0}   (target ≤ 6000)");
            Console.Error.WriteLine("the same model exported to ONNX, ONNX Runtime beside TorchSharp, interleaved…");
            var (torchMs, ortMs) = ModelBenchmark.OnnxRuntimeVersusTorch(ModelOptions.ParseBackbone(r.Backbone), r.ImageSize, r.Batch, parse.GetValue(repeats));
            Console.WriteLine($"  onnxruntime_ms_per_image {ortMs,7:F1}   ({ortMs / torchMs:F2} × TorchSharp's {torchMs:F1} in the same run)");
            if (parse.GetValue(json) is { } path)
            {
                var doc = new Dictionary<string, object?>
                {
                    ["backbone"] = r.Backbone, ["image_size"] = r.ImageSize, ["batch"] = r.Batch, ["train_batch"] = r.TrainBatch,
                    ["encoder_ms_per_image"] = r.EncoderMsPerImage, ["model_ms_per_image"] = r.ModelMsPerImage, ["ratio"] = r.Ratio,
                    ["scan_ns_per_step"] = r.ScanNsPerStep, ["scan_port_bound_ns_per_step"] = NullIfNaN(r.ScanPortBoundNs),
                    ["scan_times_port_bound"] = NullIfNaN(r.ScanTimesBound), ["kernel_width"] = r.KernelWidth, ["train_ms_per_image"] = r.TrainMsPerImage, ["train_peak_rss_mb"] = r.TrainPeakRssMb,
                    ["train_ratio"] = r.TrainRatio, ["train_cached_ms_per_image"] = r.TrainCachedMsPerImage, ["train_cached_ratio"] = r.TrainCachedRatio,
                    ["onnxruntime_ms_per_image"] = ortMs, ["onnxruntime_torch_ms_per_image"] = torchMs,
                    ["threads"] = r.Threads, ["processor_count"] = r.ProcessorCount, ["allocator"] = Util.NativeAllocator.Describe(),
                    ["gemm"] = Util.MklVendorCheck.State,
                    ["native_isa"] = Util.NativeIsaLimit.State,
                    ["kernels"] = Ssm.ScanWorkers.Describe(),
                };
                AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return command;
    }

    /// <summary>JSON has no NaN: a figure that was not measured is null.</summary>
    private static object? NullIfNaN(double v) => double.IsNaN(v) ? null : v;
}
