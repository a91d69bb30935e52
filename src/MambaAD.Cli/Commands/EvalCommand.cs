using System.CommandLine;
using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.IO;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad eval</c>: score saved anomaly maps with the official seven metrics (a thin layer over <see cref="MapEvaluation"/>).</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var data = new DataOptions("Dataset root (MVTec AD, VisA, MPDD, BTAD, MVTec 3D-AD, Uni-Medical, Real-IAD, ADer meta.json or plain folders; detected automatically)", required: true);
        var maps = new Option<string>("--maps") { Description = "Folder of anomaly maps: <class>/<defect>/<stem>.npy (float32 H×W, any size; 'good' for normal images); optional scores.csv with class,defect,stem,score (otherwise the score is the map's max)", Required = true };
        var json = new Option<string?>("--json") { Description = "Write the metrics (×100) as JSON to this file (atomically)" };
        var size = new Option<int>("--image-size") { Description = "Evaluation size: masks are resized to it (PIL bilinear, > 0.5), maps of another size too (bilinear, align_corners)", DefaultValueFactory = _ => 256 };
        var command = new Command("eval", "Evaluate saved anomaly maps against a dataset's ground truth with the official metrics " +
            "(I-AUROC, I-AP, I-F1max, P-AUROC, P-AP, P-F1max, AU-PRO, mAD; ×100). Pixel metrics of a class whose defect images " +
            "have no masks are unavailable (–, null) and mAD averages the metrics that exist.")
        {
            maps, json, size,
        };
        data.AddTo(command);
        command.SetAction((parse, ct) => Task.FromResult(Run(parse, ct)));
        return command;

        int Run(ParseResult parse, CancellationToken ct)
        {
            var jsonPath = parse.GetValue(json) is { } j ? OutputPath.File(j, "JsonPath") : null; // checked before the work
            var report = MapEvaluation.Run(new MapEvaluationOptions(data.Root(parse)!, parse.GetValue(maps)!, data.Read(parse), parse.GetValue(size)), ct);
            Console.WriteLine($"{report.Dataset.Layout} layout, {report.Dataset.ClassNames.Count} class(es), {report.Dataset.Test.Count} test images, {parse.GetValue(size)}² evaluation");
            foreach (var w in report.Warnings) Console.Error.WriteLine($"warning: {w}");
            if (report.Warnings.Count > 0) Console.Error.WriteLine($"{report.Warnings.Count} warning(s)");
            Console.Write(report.Result.ToTable());
            NoteRounding(report.Result);
            if (jsonPath is { } path)
            {
                AtomicFile.WriteAllText(path, report.Result.ToJson());
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        }
    }

    /// <summary>Says which classes had their pixel metrics computed on rounded maps (bounded memory), and by how much.</summary>
    internal static void NoteRounding(EvaluationResult result)
    {
        var rounded = result.PixelRounding.Where(p => p.Value > 0).ToList();
        if (rounded.Count == 0) return;
        Console.WriteLine($"note: pixel metrics of {rounded.Count} class(es) are those of the maps rounded down by less than " +
            $"{rounded.Max(p => p.Value):G2} of each value (bounded memory; README, \"Evaluation in bounded memory\")");
    }
}
