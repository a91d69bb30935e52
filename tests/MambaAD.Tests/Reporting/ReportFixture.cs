using MambaAD.Data;
using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.Evaluation;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Model;

namespace MambaAD.Tests.Reporting;

/// <summary>
/// A real <see cref="TestReport"/>: an untrained tiny model (64², resnet18, depths 2-2-2-2) tested on a generated
/// two-class dataset. Untrained maps are noise, which is what a report must also show well: mistakes of both kinds.
/// </summary>
public sealed class ReportFixture : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("mambaad-report").FullName;
    public TestReport Report { get; }

    public ReportFixture()
    {
        var info = SyntheticDataset.Generate(Path.Combine(Dir, "data"), new SyntheticDatasetOptions(ImageSize: 64, TrainPerClass: 1,
            TestGoodPerClass: 4, TestDefectPerType: 1, Classes: ["carpet", "washer"]));
        var ds = Dataset.Open(info.Root);
        TorchSharp.torch.manual_seed(1);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        Report = ModelTesting.Run(model, InputNormalization.ImageNet, ds.Test, new TestOptions(BatchSize: 8));
    }

    public string P(string name) => Path.Combine(Dir, name);

    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}
