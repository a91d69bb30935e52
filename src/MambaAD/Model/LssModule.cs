using MambaAD.Ssm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// LSS module (spec §5, paper eq. 5–7): a global branch of cascaded HSS blocks beside two local branches
/// (1×1 → IN → SiLU → depth-wise k×k → IN → SiLU → 1×1 → IN → SiLU, k = 5 and 7), all on the full C channels;
/// concatenated as [G, L5, L7], fused by a 1×1 conv and added to the input. Channels-last in and out.
/// Field order follows the official state_dict: smm_blocks, conv1b7, conv1a7, conv1b5, conv1a5, conv55, conv77, finalconv11.
/// </summary>
internal sealed class LssModule : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<HssBlock> smm_blocks;
    private readonly Sequential conv1b7;
    private readonly Sequential conv1a7;
    private readonly Sequential conv1b5;
    private readonly Sequential conv1a5;
    private readonly Sequential conv55;
    private readonly Sequential conv77;
    private readonly Conv2d finalconv11;

    /// <param name="dim">C.</param>
    /// <param name="depth">Cascaded HSS blocks in the global branch (2 or 3).</param>
    /// <param name="side">The feature map side S that the HSS blocks scan.</param>
    /// <param name="dropPath">The module's stochastic-depth probability, shared by its HSS blocks (§4).</param>
    /// <param name="scanType">The scan method of every HSS block (§8.1).</param>
    /// <param name="directions">K, the scan directions (2, 4 or 8).</param>
    /// <param name="dState">N, the SSM state size.</param>
    public LssModule(long dim, int depth, int side, double dropPath = 0, ScanType scanType = ScanType.Hilbert, int directions = 8, long dState = 16)
        : base(nameof(LssModule))
    {
        smm_blocks = nn.ModuleList(Enumerable.Range(0, depth)
            .Select(_ => new HssBlock(dim, side, dropPath, scanType, directions, dState)).ToArray());
        conv1b7 = ConvInSilu(dim, 1);
        conv1a7 = ConvInSilu(dim, 1);
        conv1b5 = ConvInSilu(dim, 1);
        conv1a5 = ConvInSilu(dim, 1);
        conv55 = ConvInSilu(dim, 5);
        conv77 = ConvInSilu(dim, 7);
        finalconv11 = nn.Conv2d(3 * dim, dim, 1, bias: true);
        RegisterComponents();
        // §5: every Conv2d inside the module, including SS2D's depth-wise 3×3, gets normal(0, √(2/fan_out)), bias 0.
        foreach (var conv in modules().OfType<Conv2d>()) ModelInit.ConvFanOutNormal(conv);
    }

    private const double InEps = 1e-5;

    /// <summary>k = 1: a 1×1 C→C conv with bias; k > 1: a depth-wise k×k conv without bias. Then IN (no affine) and SiLU.</summary>
    private static Sequential ConvInSilu(long dim, int k) => nn.Sequential(
        k == 1 ? nn.Conv2d(dim, dim, 1, bias: true) : nn.Conv2d(dim, dim, k, padding: k / 2, groups: dim, bias: false),
        nn.InstanceNorm2d(dim, eps: InEps, affine: false, track_running_stats: false),
        nn.SiLU());

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var g = x;
        foreach (var block in smm_blocks) g = block.call(g);                 // global branch, (B, H, W, C)
        // (B, C, H, W) views of channels-last memory, so the depth-wise 5×5/7×7 run oneDNN's NHWC kernels (no copy to
        // NCHW, and several times faster there), the 1×1 convs are GEMMs (Pointwise) and the outputs stay channels-last.
        // No libtorch conv runs under autograd: with channels-last convs there, about one training run in ten got other
        // gradients in the last bits at the same step, which breaks the promise that a resumed run equals the
        // uninterrupted one bit for bit (docs/performance.md, "Local branches"); DepthwiseConv and InstanceNormSilu
        // have backwards of their own, and the GEMMs' is MKL's, as SS2D's projections.
        var xc = x.permute(0, 3, 1, 2);
        var l5 = LocalBranch(conv1b5, conv55, conv1a5, xc);
        var l7 = LocalBranch(conv1b7, conv77, conv1a7, xc);
        var merged = Pointwise(cat([g.permute(0, 3, 1, 2), l5, l7], 1), finalconv11.weight!, finalconv11.bias) + xc;
        return merged.permute(0, 2, 3, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One local branch: 1×1, depth-wise k×k and 1×1, each conv → IN → SiLU, channels-last throughout. Under autograd
    /// the branch is recomputed in the backward (<see cref="Recompute"/>), so a training step keeps its input and
    /// output, not the five tensors in between; without it, the same function runs once.
    /// </summary>
    private static Tensor LocalBranch(Sequential first, Sequential depthwise, Sequential last, Tensor x)
    {
        var (c1, ck, c3) = (ConvOf(first), ConvOf(depthwise), ConvOf(last));
        return Recompute.Run(t => ConvInSilu(ConvInSilu(ConvInSilu(t[0], t[1], t[2]), t[3], null), t[4], t[5]),
            x, c1.weight!, c1.bias!, ck.weight!, c3.weight!, c3.bias!);
    }

    private static Conv2d ConvOf(Sequential convInSilu) => (Conv2d)convInSilu.children().First();

    /// <summary>
    /// A 1×1 conv of x (B, C, H, W); on channels-last memory as the GEMM it is (a Linear over each pixel's channels).
    /// oneDNN's channels-last 1×1 kernel returned wrong values on a VM that hides the CPU's cache sizes (2×2 and 7×7
    /// maps of 512 channels at batch > 1: the 64² and 224² models' first stage; docs/performance.md, "Issue 14, phase
    /// 7"), and the GEMM is what it would compute anyway. NCHW-contiguous input keeps libtorch's conv.
    /// </summary>
    private static Tensor Pointwise(Tensor x, Tensor weight, Tensor? bias)
    {
        var pixels = x.permute(0, 2, 3, 1);
        if (!pixels.is_contiguous()) return nn.functional.conv2d(x, weight, bias);
        return nn.functional.linear(pixels, weight.flatten(1), bias).permute(0, 3, 1, 2);
    }

    /// <summary>
    /// conv → IN → SiLU as functions of the weights: a 1×1 conv with bias, or the depth-wise k×k without, whose weight
    /// gradient <see cref="DepthwiseConv"/> computes (libtorch's NCHW one was a sixth of a training step); IN + SiLU is
    /// <see cref="InstanceNormSilu"/>, one kernel each way where libtorch made a batch norm over a copy and a SiLU.
    /// </summary>
    private static Tensor ConvInSilu(Tensor x, Tensor weight, Tensor? bias)
    {
        var conv = weight.shape[2] > 1 ? DepthwiseConv.Apply(x, weight) : Pointwise(x, weight, bias);
        return InstanceNormSilu.Apply(conv, InEps);
    }
}
