using System.CommandLine;
using System.Globalization;
using System.Text;
using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Inference;
using MambaAD.Reporting;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad test</c>: the seven official metrics of a checkpoint on a dataset's test split.</summary>
internal static class TestCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var data = new DataOptions("Dataset root (layout detected automatically)", required: true);
        var json = new Option<string?>("--json") { Description = "Write the metrics (×100) as JSON, in the shape mambaad eval writes" };
        var csv = new Option<string?>("--csv") { Description = "Write the metrics (×100) as CSV: one row per class, then the mean" };
        var saveMaps = new Option<string?>("--save-maps") { Description = "Write each smoothed map (float32, model size) as DIR/<class>/<defect>/<stem>.npy, the layout mambaad eval reads" };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass", DefaultValueFactory = _ => 16 };
        var report = new Option<string?>("--report") { Description = "Write a self-contained HTML report: metrics, ROC/PR curves, score histograms, heat-map gallery (mistakes first)" };
        var reportGallery = new Option<int>("--report-gallery") { Description = "Gallery rows per class in --report, worst mistakes first (about 260 KB of memory per row and class while testing); 0 for all", DefaultValueFactory = _ => 24 };
        var command = new Command("test", "Evaluate a checkpoint on a dataset's test split: I-AUROC, I-AP, I-F1max, P-AUROC, P-AP, P-F1max, AU-PRO per class, their mean and mAD (×100).")
        { json, csv, saveMaps, batch, report, reportGallery };
        data.AddTo(command);
        ckpt.AddTo(command);
        command.SetAction((parse, ct) => Task.FromResult(Run(parse, ct)));
        return command;

        int Run(ParseResult parse, CancellationToken ct)
        {
            // Output paths are checked before the work: a wrong kind of path is one line now, not a failure at the end.
            var jsonPath = parse.GetValue(json) is { } jp ? OutputPath.File(jp, "JsonPath") : null;
            var csvPath = parse.GetValue(csv) is { } cp ? OutputPath.File(cp, "CsvPath") : null;
            var reportPath = parse.GetValue(report) is { } rp ? OutputPath.File(rp, "ReportPath") : null;
            var mapsDir = parse.GetValue(saveMaps) is { } mp ? OutputPath.Folder(mp, nameof(TestOptions.SaveMapsDir)) : null;
            var (path, official, device) = ckpt.Read(parse);
            using var predictor = Predictor.Load(path, official, device);
            var ds = data.Open(parse);
            Console.WriteLine($"{predictor.ModelPath}: MambaAD ({predictor.Info.Config}); {ds.Layout} layout, {ds.ClassNames.Count} class(es), {ds.Test.Count} test images");
            // The gallery's thumbnails are kept while testing, only when a report will show them.
            int gallery = reportPath is null ? 0 : parse.GetValue(reportGallery) is > 0 and var g ? g : int.MaxValue;
            TestReport result;
            try
            {
                result = ModelTesting.Run(predictor, ds.Test, new TestOptions(parse.GetValue(batch), mapsDir, parse.GetValue(data.SkipBad), GalleryPerClass: gallery), null, ct);
            }
            catch (Exception) when (ct.IsCancellationRequested) { throw new OperationCanceledException(ct); }
            ct.ThrowIfCancellationRequested(); // an interrupted test's metrics say nothing: none are printed or written
            foreach (var w in ds.Warnings.Concat(result.Warnings)) Console.Error.WriteLine($"warning: {w}");
            Console.Write(result.Result.ToTable());
            EvalCommand.NoteRounding(result.Result);
            if (jsonPath is { } j) { AtomicFile.WriteAllText(j, result.Result.ToJson()); Console.WriteLine($"wrote {j}"); }
            if (csvPath is { } c) { AtomicFile.WriteAllText(c, ToCsv(result.Result)); Console.WriteLine($"wrote {c}"); }
            if (mapsDir is { } m) Console.WriteLine($"wrote {result.Images.Count} maps under {m}");
            if (reportPath is { } r)
            {
                HtmlReport.Write(r, result, new ReportOptions(Thresholds: predictor.Info.Thresholds, GalleryPerClass: 0,
                    Metadata: [new("checkpoint", predictor.ModelPath), new("model", predictor.Info.Config.ToString()), new("dataset", $"{ds.Root} ({ds.Layout})")]));
                Console.WriteLine($"wrote {r}");
            }
            return 0;
        }
    }

    internal static string ToCsv(EvaluationResult result)
    {
        var sb = new StringBuilder("class," + string.Join(",", ClassMetrics.Names) + "\n");
        foreach (var (name, m) in result.Classes.Append(new("mean", result.Mean)))
            sb.Append(name).Append(',').AppendJoin(",", m.Values.Select(v => v is null ? "" : (100 * v.Value).ToString("F4", CultureInfo.InvariantCulture))).Append('\n');
        return sb.ToString();
    }
}
