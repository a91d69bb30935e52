namespace MambaAD.Checkpoints;

/// <summary>
/// The training recipe (spec §13). Defaults are the official ones — batch 16 with drop_last, AdamW lr 0.005,
/// betas (0.9, 0.999), eps 1e-8, weight decay 1e-4 (not on biases and 1-D tensors), gradient-norm clip 5, learning
/// rate ×0.1 at 80 % of the iterations, seed 42, 20 tests per run — except the length: the official configs train
/// 1000 epochs (a GPU budget); the default here is ADer's benchmark length of 100 epochs.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Epochs to train; ignored when <see cref="Iterations"/> is set.</summary>
    public int Epochs { get; init; } = 100;

    /// <summary>Total iterations instead of epochs (the last epoch may end early).</summary>
    public int? Iterations { get; init; }

    /// <summary>
    /// A wall-time budget for the optimisation (tests excluded): after a few iterations the run measures its speed and
    /// shortens the planned iterations to fit, keeping the learning-rate decay at 80 % of the new total.
    /// </summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>Images per optimizer step (the last incomplete batch of an epoch is dropped).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>AdamW's learning rate before the decay.</summary>
    public double LearningRate { get; init; } = 0.005;

    /// <summary>AdamW's β₁.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW's β₂.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>AdamW's ε.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>AdamW's weight decay, on tensors of more than one dimension that are not biases.</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>The gradient's total norm is clipped to this.</summary>
    public double ClipGradNorm { get; init; } = 5.0;

    /// <summary>Fraction of the iterations after which the learning rate is multiplied by <see cref="LrDecayFactor"/>.</summary>
    public double LrDecayAt { get; init; } = 0.8;
    /// <summary>The learning rate's factor after the decay point.</summary>
    public double LrDecayFactor { get; init; } = 0.1;

    /// <summary>Seeds initialisation, shuffling and drop-path.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Test every this many epochs (and always at the end); null: 20 times per run, as the official trainer; 0: only at the end.</summary>
    public int? TestEvery { get; init; }

    /// <summary>libtorch intra-op threads; 0 keeps libtorch's default (the core count).</summary>
    public int Threads { get; init; }

    /// <summary>"cpu" or "cuda" (needs a CUDA build of libtorch).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Parallel image decoders; 0 for the core count.</summary>
    public int Workers { get; init; }

    /// <summary>
    /// Memory in GB for keeping the frozen encoder's features of the training images from the first epoch on, so that
    /// later epochs skip the encoder and the image decoding (the same weights result). When not every image's features
    /// fit (1.75 MB per 256² image), they go to a temporary file in the run folder if its disk has room; null: a third
    /// of the memory available; 0: no cache at all.
    /// </summary>
    public double? FeatureCacheGb { get; init; }

    /// <summary>The epoch at which testing happens, given the total number of epochs.</summary>
    public bool IsTestEpoch(int epoch, int totalEpochs)
    {
        if (epoch == totalEpochs) return true;
        int every = TestEvery ?? Math.Max(1, totalEpochs / 20);
        return every > 0 && epoch % every == 0;
    }

    /// <summary>Checks the values; an error names the setting.</summary>
    /// <exception cref="MambaADException">A value out of range.</exception>
    public TrainingOptions Validate()
    {
        if (Iterations is null && Epochs <= 0) throw new MambaADException($"the number of epochs {Epochs} must be positive", nameof(Epochs));
        if (Iterations is <= 0) throw new MambaADException($"the number of iterations {Iterations} must be positive", nameof(Iterations));
        if (BatchSize <= 0) throw new MambaADException($"the batch size {BatchSize} must be positive", nameof(BatchSize));
        if (LearningRate <= 0) throw new MambaADException($"the learning rate {LearningRate} must be positive", nameof(LearningRate));
        if (FeatureCacheGb is < 0 || FeatureCacheGb is { } gb && !double.IsFinite(gb))
            throw new MambaADException($"the feature cache of {FeatureCacheGb} GB must be 0 (off) or a positive number of GB", nameof(FeatureCacheGb));
        if (TestEvery is < 0) throw new MambaADException($"testing every {TestEvery} epochs: use 0 (at the end only) or a positive number", nameof(TestEvery));
        return this;
    }
}
