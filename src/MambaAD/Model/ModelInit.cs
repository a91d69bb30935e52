using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>Initialisation helpers shared by the modules (spec §9). Each runs under no_grad.</summary>
internal static class ModelInit
{
    /// <summary>normal(0, √(2 / fan_out)) with fan_out = k·k·out/groups, bias 0: every Conv2d of an LSS module (§5).</summary>
    public static void ConvFanOutNormal(TorchSharp.Modules.Conv2d conv)
    {
        using var _ = no_grad();
        var w = conv.weight!;
        long fanOut = w.shape[0] * w.shape[2] * w.shape[3] / conv.groups;
        nn.init.normal_(w, 0, Math.Sqrt(2.0 / fanOut));
        if (conv.bias is { } b) nn.init.zeros_(b);
    }

    /// <summary>Kaiming-normal, mode fan_out, ReLU gain: std = √(2 / (out·k·k)) (MFF_OCE, §3). Bias keeps its default.</summary>
    public static void KaimingFanOut(TorchSharp.Modules.Conv2d conv)
    {
        using var _ = no_grad();
        var w = conv.weight!;
        nn.init.normal_(w, 0, Math.Sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3])));
    }

    /// <summary>
    /// Truncated normal, std 0.02, cut at ±2 absolute (timm trunc_normal_), bias 0: decoder Linears (§9.3). The cut sits
    /// 100σ out, so no draw ever reaches it: a plain normal is the same distribution (spec §7.4).
    /// </summary>
    public static void TruncNormalLinear(TorchSharp.Modules.Linear linear)
    {
        using var _ = no_grad();
        nn.init.normal_(linear.weight!, 0, 0.02);
        if (linear.bias is { } b) nn.init.zeros_(b);
    }

    /// <summary>weight 1, bias 0 (LayerNorm and BatchNorm affine parameters).</summary>
    public static void OnesZeros(Tensor? weight, Tensor? bias)
    {
        using var _ = no_grad();
        if (weight is not null) nn.init.ones_(weight);
        if (bias is not null) nn.init.zeros_(bias);
    }
}
