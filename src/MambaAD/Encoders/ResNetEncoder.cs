using MambaAD.IO;

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MambaAD.Encoders;

/// <summary>
/// The frozen teacher (spec §2): a ResNet stem and layers 1–3 of BasicBlocks, returning the outputs of layer1, layer2
/// and layer3 after each layer's final ReLU as <c>[F1, F2, F3]</c>. There is no layer4 and no fc head.
/// Field names follow the timm/torchvision state_dict (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>,
/// <c>layer2.0.downsample.0</c>, …), so PyTorch checkpoints load without renaming.
/// The module is frozen (no parameter requires grad), always in eval mode (BatchNorm uses running statistics whatever
/// <see cref="train(bool)"/> asks), and its outputs are detached. It runs channels-last: oneDNN's NHWC convolutions
/// take 20 % less time than its NCHW ones here (docs/performance.md, "Issue 14, phase 28"), and F1–F3 come out
/// channels-last, the layout the anomaly map compares them in.
/// </summary>
internal sealed class ResNetEncoder : Module<Tensor, Tensor[]>
{
    // Field names are state_dict keys (timm/torchvision): do not rename.
#pragma warning disable IDE1006
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
#pragma warning restore IDE1006

    /// <summary>Creates an encoder with freshly initialised (untrained) weights; load weights with
    /// <see cref="EncoderWeights.LoadInto(ResNetEncoder)"/>.</summary>
    public ResNetEncoder(Backbone backbone) : base("ResNetEncoder")
    {
        Descriptor = EncoderDescriptor.Of(backbone);
        var (blocks, channels) = (Descriptor.BlocksPerLayer, Descriptor.Channels);
        conv1 = Conv2d(3, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(64, eps: 1e-5);
        layer1 = MakeLayer(64, channels[0], blocks[0], stride: 1);
        layer2 = MakeLayer(channels[0], channels[1], blocks[1], stride: 2);
        layer3 = MakeLayer(channels[1], channels[2], blocks[2], stride: 2);
        RegisterComponents();

        foreach (var p in parameters()) p.requires_grad = false;
        base.train(false);
    }

    /// <summary>The architecture: blocks per layer, and the channels and strides of F1, F2, F3.</summary>
    public EncoderDescriptor Descriptor { get; }

    /// <summary>The backbone.</summary>
    public Backbone Backbone => Descriptor.Backbone;

    private static Sequential MakeLayer(int inChannels, int outChannels, int blocks, int stride)
    {
        var list = new List<(string, Module<Tensor, Tensor>)>();
        for (int i = 0; i < blocks; i++)
            list.Add((i.ToString(), new BasicBlock(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1)));
        return Sequential(list);
    }

    /// <summary>Computes <c>[F1, F2, F3]</c> (detached, channels-last) for a normalised batch (B, 3, H, W).</summary>
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var h = functional.max_pool2d(functional.relu(bn1.call(conv1.call(Util.TensorMemory.ChannelsLast(x)))), kernel_size: 3, stride: 2, padding: 1);
        var f1 = layer1.call(h);
        var f2 = layer2.call(f1);
        var f3 = layer3.call(f2);
        return [f1.detach().MoveToOuterDisposeScope(), f2.detach().MoveToOuterDisposeScope(), f3.detach().MoveToOuterDisposeScope()];
    }

    /// <summary>The state_dict in PyTorch's order (each module's parameters, then its buffers, then its children), so
    /// the keys, shapes and order equal timm's <c>net_t.*</c> entries.</summary>
    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null) =>
        StateDict.Collect(this, destination, prefix);

    /// <summary>Ignores <paramref name="train"/>: the teacher always stays in eval mode (spec §2).</summary>
    public override void train(bool train = true) => base.train(false);
}

/// <summary>
/// A ResNet v1 BasicBlock with the stride on the first 3×3 convolution and an optional 1×1 convolution + BN shortcut
/// (<c>downsample.0</c>, <c>downsample.1</c>) when the shape changes.
/// </summary>
internal sealed class BasicBlock : Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;
#pragma warning restore IDE1006

    public BasicBlock(int inChannels, int outChannels, int stride) : base("BasicBlock")
    {
        conv1 = Conv2d(inChannels, outChannels, kernel_size: 3, stride: stride, padding: 1, bias: false);
        bn1 = BatchNorm2d(outChannels, eps: 1e-5);
        conv2 = Conv2d(outChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, bias: false);
        bn2 = BatchNorm2d(outChannels, eps: 1e-5);
        if (stride != 1 || inChannels != outChannels)
            downsample = Sequential(
                Conv2d(inChannels, outChannels, kernel_size: 1, stride: stride, bias: false),
                BatchNorm2d(outChannels, eps: 1e-5));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = functional.relu(bn1.call(conv1.call(x)));
        h = bn2.call(conv2.call(h));
        var shortcut = downsample is null ? x : downsample.call(x);
        return functional.relu(h + shortcut).MoveToOuterDisposeScope();
    }
}
