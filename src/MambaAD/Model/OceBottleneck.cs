using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The Bottleneck block (expansion 4, no conv biases) of the OCE part of MFF_OCE (spec §3): 1×1 → BN → ReLU → 3×3/s →
/// BN → ReLU → 1×1 → BN, plus the shortcut (1×1/s conv + BN when the shape changes), then ReLU.
/// </summary>
internal sealed class OceBottleneck : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly Sequential? downsample;

    /// <summary>Output channels per plane (timm's Bottleneck).</summary>
    public const int Expansion = 4;

    public OceBottleneck(long inplanes, long planes, long stride) : base(nameof(OceBottleneck))
    {
        long outplanes = planes * Expansion;
        conv1 = nn.Conv2d(inplanes, planes, 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        conv3 = nn.Conv2d(planes, outplanes, 1, bias: false);
        bn3 = nn.BatchNorm2d(outplanes);
        downsample = stride != 1 || inplanes != outplanes
            ? nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride: stride, bias: false), nn.BatchNorm2d(outplanes))
            : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.call(conv1.call(x)));
        y = nn.functional.relu(bn2.call(conv2.call(y)));
        y = bn3.call(conv3.call(y));
        var shortcut = downsample is null ? x : downsample.call(x);
        return nn.functional.relu(y + shortcut).MoveToOuterDisposeScope();
    }
}
