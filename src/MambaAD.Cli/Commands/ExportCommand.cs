using System.CommandLine;
using MambaAD.Onnx;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad export</c>: a checkpoint as one standard ONNX model (a thin layer over <see cref="OnnxExport"/>).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var output = new Option<string>("--out") { Description = "The .onnx file to write", Required = true };
        var batch = new Option<int?>("--batch") { Description = "A fixed batch (default 1 unless --dynamic-batch)" };
        var dynamic = new Option<bool>("--dynamic-batch") { Description = "A symbolic batch dimension instead of a fixed one" };
        var opset = new Option<int>("--opset")
        { Description = $"ONNX opset, {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}", DefaultValueFactory = _ => OnnxExportOptions.MinOpset };
        var command = new Command("export", "Write the whole inference graph (normalised image → smoothed anomaly map and image score) as an ONNX model, " +
            "with the normalisation, classes and thresholds in its metadata.") { output, batch, dynamic, opset };
        ckpt.AddTo(command);
        command.SetAction(parse =>
        {
            if (parse.GetValue(dynamic) && parse.GetValue(batch) is not null)
                throw new MambaADException("--batch and --dynamic-batch exclude each other: give one");
            var options = new OnnxExportOptions { Batch = parse.GetValue(dynamic) ? null : parse.GetValue(batch) ?? 1, Opset = parse.GetValue(opset) }.Validate();
            var (path, official, _) = ckpt.Read(parse);
            var file = parse.GetValue(output)!;
            var info = OnnxExport.Export(path, file, options, official);
            Console.WriteLine($"wrote {file} ({new FileInfo(file).Length / 1e6:F1} MB): input 'image' ({options.Batch?.ToString() ?? "batch"}, 3, " +
                $"{info.Config.ImageSize}, {info.Config.ImageSize}), normalised {info.Normalization.Name}; outputs 'anomaly_map' and 'score'");
            return 0;
        });
        return command;
    }
}
