using MambaAD.Checkpoints;

using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Model;

namespace MambaAD.Tests.Reporting;

public class TestCommandReportTests
{
    [Fact]
    public void Test_command_writes_the_report_with_the_checkpoint_thresholds()
    {
        var dir = Directory.CreateTempSubdirectory("mambaad-test-report").FullName;
        try
        {
            var data = SyntheticDataset.Generate(Path.Combine(dir, "data"), new SyntheticDatasetOptions(ImageSize: 64, TrainPerClass: 1,
                TestGoodPerClass: 2, TestDefectPerType: 1, Classes: ["carpet"]));
            using (var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }))
                Checkpoint.Save(Path.Combine(dir, "ckpt"), model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test",
                    InputNormalization.ImageNet, ["carpet"], new Thresholds(0.123, 0.456, "unit test"), null, DateTime.UtcNow.ToString("O")));
            var report = Path.Combine(dir, "out", "report.html");
            Directory.CreateDirectory(Path.GetDirectoryName(report)!);

            int code = Cli.Program.Main(["test", "--checkpoint", Path.Combine(dir, "ckpt"), "--data", data.Root, "--report", report, "--report-gallery", "3"]);

            Assert.Equal(0, code);
            var html = File.ReadAllText(report);
            Assert.Contains("image 0.123, pixel 0.456 (unit test)", html);
            Assert.Contains("id=\"class-carpet\"", html);
            Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(html, "<tr class=\"(fp|fn|tp|tn)\">").Count);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
