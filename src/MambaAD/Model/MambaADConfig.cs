using MambaAD.Encoders;
using MambaAD.Ssm;

namespace MambaAD.Model;

/// <summary>
/// The hyper-parameters of a MambaAD model (spec §4, §7.1), with the official defaults: ResNet34, 256², Hilbert scan
/// in 8 directions, decoder depths [3, 4, 6, 3], N = 16, drop-path rate 0.2.
/// </summary>
public sealed record MambaADConfig
{
    /// <summary>The encoder: ResNet34 (the paper's) or ResNet18.</summary>
    public Backbone Backbone { get; init; } = Backbone.ResNet34;

    /// <summary>Square input side; a multiple of 32 (the bottleneck Z is Size/32).</summary>
    public int ImageSize { get; init; } = 256;

    /// <summary>The scan method of the HSS blocks (spec §8.1).</summary>
    public ScanType Scan { get; init; } = ScanType.Hilbert;

    /// <summary>K = 2, 4 or 8 scan directions.</summary>
    public int Directions { get; init; } = 8;

    /// <summary>HSS blocks per decoder stage: [3,4,6,3], or the ablations [2,2,2,2] and [2,9,2,2].</summary>
    public IReadOnlyList<int> Depths { get; init; } = [3, 4, 6, 3];

    /// <summary>N, the state size of the selective scan (spec §7.1).</summary>
    public int DState { get; init; } = 16;

    /// <summary>The stochastic-depth rate of the decoder, spread linearly over its blocks (spec §4).</summary>
    public double DropPathRate { get; init; } = 0.2;

    /// <summary>The side of the bottleneck map Z (8 at 256²).</summary>
    public int BottleneckSide => ImageSize / 32;

    /// <summary>Checks the values a user can set; the message names the option and the fix.</summary>
    public MambaADConfig Validate()
    {
        if (!Enum.IsDefined(Backbone))
            throw new ArgumentOutOfRangeException(nameof(Backbone), Backbone, $"not a backbone; use one of {EncoderDescriptor.Names}");
        if (ImageSize < 32 || ImageSize % 32 != 0)
            throw new MambaADException($"the image size {ImageSize} is not a multiple of 32: use e.g. 256 (the official size), 224 or 320", nameof(ImageSize));
        if (Directions is not (2 or 4 or 8))
            throw new MambaADException($"{Directions} scan directions are not supported: use 2, 4 or 8", nameof(Directions));
        foreach (var d in Depths) MambaDecoder.ModuleLayout(d);
        if (Depths.Count != 4) throw new MambaADException($"the decoder depths need 4 values (one per stage), e.g. 3,4,6,3; got {Depths.Count}", nameof(Depths));
        return this;
    }

    /// <summary>A one-line summary for logs.</summary>
    public override string ToString() =>
        $"{EncoderDescriptor.Of(Backbone).Name}, {ImageSize}², {ScanOrder.Name(Scan)} ×{Directions}, depths [{string.Join(",", Depths)}], d_state {DState}";
}
