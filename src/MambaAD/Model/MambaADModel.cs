using MambaAD.Encoders;
using MambaAD.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// MambaAD (spec §1): the frozen ResNet encoder <c>net_t</c> → MFF_OCE <c>mff_oce</c> → Mamba decoder <c>net_s</c>.
/// <see cref="forward"/> returns the encoder features [F1, F2, F3] and the decoder features [D3, D2, D1], paired by
/// index; <see cref="Predict"/> turns them into anomaly maps and image scores (§12). The state_dict is the official
/// one (keys, order, shapes, dtypes; spec §18).
/// </summary>
internal sealed class MambaADModel : nn.Module<Tensor, (Tensor[] Encoder, Tensor[] Decoder)>, IAnomalyModel
{
    private readonly ResNetEncoder net_t;
    private readonly MffOce mff_oce;
    private readonly MambaDecoder net_s;

    public MambaADConfig Config { get; }

    /// <summary>Builds the model with freshly initialised weights (§9); load the encoder's pretrained weights separately.</summary>
    public MambaADModel(MambaADConfig? config = null) : base("MambaAD")
    {
        Config = (config ?? new MambaADConfig()).Validate();
        Util.MklVmlDispatch.Resolve();   // before the first exp (SS2D's initialisation): MKL's first call must be single-threaded
        net_t = new ResNetEncoder(Config.Backbone);
        mff_oce = new MffOce(net_t.Descriptor.Channels);
        net_s = new MambaDecoder(Config.Depths, Config.BottleneckSide, Config.Scan, Config.Directions, Config.DState, Config.DropPathRate);
        RegisterComponents();
    }

    public ResNetEncoder Encoder => net_t;
    public MffOce Bottleneck => mff_oce;
    public MambaDecoder Decoder => net_s;

    /// <summary>x (B, 3, S, S) normalised for the encoder's weights → ([F1, F2, F3] detached, [D3, D2, D1]).</summary>
    public override (Tensor[] Encoder, Tensor[] Decoder) forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var f = net_t.call(x);
        var d = net_s.call(mff_oce.call(f));
        foreach (var t in f.Concat(d)) t.MoveToOuterDisposeScope();
        return (f, d);
    }

    /// <summary>The training loss for a batch (spec §11).</summary>
    public Tensor Loss(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Loss(net_t.call(x)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The training loss for a batch given its encoder features [F1, F2, F3], as <see cref="Encoder"/> returns them: the
    /// encoder is frozen and in eval mode, so features kept from an earlier epoch give the same loss (the trainer's cache).
    /// </summary>
    public Tensor Loss(Tensor[] encoderFeatures)
    {
        using var scope = NewDisposeScope();
        var d = net_s.call(mff_oce.call(encoderFeatures));
        return ReconstructionLoss.Compute(encoderFeatures, d).MoveToOuterDisposeScope();
    }

    /// <summary>Anomaly maps and image scores for a batch x (B, 3, S, S), in eval mode without gradients (spec §12).</summary>
    public AnomalyMaps Predict(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return Predict(net_t.call(x));
    }

    /// <summary>
    /// <see cref="Predict(Tensor)"/> from the batch's encoder features [F1, F2, F3], as <see cref="Encoder"/> returns them
    /// (the frozen encoder gives an image the same features every time: the trainer's tests keep them).
    /// </summary>
    public AnomalyMaps Predict(Tensor[] encoderFeatures)
    {
        if (training) throw new InvalidOperationException("call eval() before Predict: BatchNorm must use its running statistics");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var d = net_s.call(mff_oce.call(encoderFeatures));
        return AnomalyMap.Compute(encoderFeatures, d, ImageSize);
    }

    /// <inheritdoc />
    public int ImageSize => Config.ImageSize;

    /// <summary>
    /// <see cref="Predict"/> on normalised images held in an array, on the model's device. Runs in eval mode whatever
    /// the module's mode (a test during training), and restores the mode after.
    /// </summary>
    public AnomalyMaps Run(float[] images, int count, CancellationToken cancellationToken = default)
    {
        int s = ImageSize;
        if (images.Length != (long)count * 3 * s * s)
            throw new ArgumentException($"expected {count}×3×{s}×{s} floats, got {images.Length}", nameof(images));
        cancellationToken.ThrowIfCancellationRequested();
        return InEval(() =>
        {
            using var scope = NewDisposeScope();
            using var x = tensor(images, [count, 3, s, s]).to(parameters().First().device);
            return Predict(x);
        });
    }

    /// <summary><paramref name="f"/> in eval mode whatever the module's mode (a test during training), the mode restored after.</summary>
    internal T InEval<T>(Func<T> f)
    {
        bool wasTraining = training;
        eval();
        try { return f(); }
        finally { if (wasTraining) train(); }
    }

    /// <summary>Train mode for MFF_OCE and the decoder; the encoder stays in eval (spec §2, §13).</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        net_t.train(false);
    }

    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null) =>
        StateDict.Collect(this, destination, prefix);

    /// <summary>Trainable parameter elements (17,444,928 for the default configuration).</summary>
    public long TrainableParameters => parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>Frozen parameter elements: the encoder (8,170,304 for ResNet34 up to layer3).</summary>
    public long FrozenParameters => parameters().Where(p => !p.requires_grad).Sum(p => p.numel());

    /// <summary>Scan-index elements (int64 <c>scans.index_flat[_inv]</c>), which the official code counts as parameters.</summary>
    public long ScanIndexElements => StateDict.Ordered(net_s).Where(e => e.Name.Contains(".scans.")).Sum(e => e.Tensor.numel());

    /// <summary>The official total (spec §10): trainable + frozen + scan indices (25,654,528 by default).</summary>
    public long TotalParameters => TrainableParameters + FrozenParameters + ScanIndexElements;
}
