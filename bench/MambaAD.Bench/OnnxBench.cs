using MambaAD.Benchmarks;
using MambaAD.Onnx;
using static TorchSharp.torch;

namespace MambaAD.Bench;

/// <summary>
/// <c>onnx [sequential|chunked] [chunk] [batch] [size] [repeats]</c>: ONNX Runtime's ms per image for one scan
/// formulation of the export, beside TorchSharp's, in one run (ResNet34, random weights).
/// </summary>
internal static class OnnxBench
{
    public static int Run(string[] args)
    {
        var formulation = args.Length > 0 ? Enum.Parse<ScanFormulation>(args[0], ignoreCase: true) : ScanFormulation.Chunked;
        int chunk = args.Length > 1 ? int.Parse(args[1]) : 64;
        int batch = args.Length > 2 ? int.Parse(args[2]) : 8;
        int size = args.Length > 3 ? int.Parse(args[3]) : 256;
        int repeats = args.Length > 4 ? int.Parse(args[4]) : 3;
        var (torchMs, ortMs) = ModelBenchmark.OnnxRuntimeVersusTorch(MambaAD.Encoders.Backbone.ResNet34, size, batch, repeats,
            new OnnxExportOptions { Batch = batch, ScanFormulation = formulation, ScanChunk = chunk });
        Console.WriteLine($"{formulation} chunk {chunk}, batch {batch}, {size}², {get_num_threads()} threads: " +
                          $"TorchSharp {torchMs:F1} ms/image, ONNX Runtime {ortMs:F1} ms/image, ratio {ortMs / torchMs:F2}");
        return 0;
    }
}
