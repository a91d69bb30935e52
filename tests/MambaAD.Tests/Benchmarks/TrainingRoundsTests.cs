using MambaAD.Benchmarks;
using MambaAD.Encoders;

namespace MambaAD.Tests.Benchmarks;

/// <summary>
/// The rounds behind <c>mambaad bench</c>'s training ratio and <c>bench -- pairs</c>: as many as asked, each with a
/// step from the images, a step from kept features and an inference pass timed (not how fast: tests never time).
/// </summary>
public class TrainingRoundsTests
{
    [Fact]
    public void Every_round_times_both_steps_and_an_inference_pass()
    {
        var rounds = ModelBenchmark.TrainingRounds(Backbone.ResNet18, imageSize: 64, batch: 2, trainBatch: 2, rounds: 3);
        Assert.Equal(3, rounds.Count);
        foreach (var r in rounds)
        {
            Assert.True(double.IsFinite(r.StepMsPerImage) && r.StepMsPerImage > 0, $"step {r.StepMsPerImage}");
            Assert.True(double.IsFinite(r.CachedStepMsPerImage) && r.CachedStepMsPerImage > 0, $"kept {r.CachedStepMsPerImage}");
            Assert.True(double.IsFinite(r.InferenceMsPerImage) && r.InferenceMsPerImage > 0, $"inference {r.InferenceMsPerImage}");
        }
    }
}
