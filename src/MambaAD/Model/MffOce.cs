using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// MFF_OCE, the paper's Half-FPN bottleneck (spec §3): a bottom-up fusion of the encoder's F1, F2, F3 (C1/C2/C3 =
/// 64/128/256 channels for ResNet18/34, read from the encoder's descriptor) followed by RD4AD's one-class embedding
/// (3 Bottleneck blocks of expansion 4, planes C2, first stride 2): (F1, F2, F3) → Z (B, 4·C2 = 512, S/32, S/32).
/// Field order follows the official state_dict (bn_layer first).
/// </summary>
internal sealed class MffOce : nn.Module<Tensor[], Tensor>
{
    private readonly Sequential bn_layer;
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv21;
    private readonly BatchNorm2d bn21;
    private readonly Conv2d conv31;
    private readonly BatchNorm2d bn31;
    private readonly Conv2d convf;
    private readonly BatchNorm2d bnf;

    /// <param name="channels">Channels of F1, F2, F3 (<see cref="Encoders.EncoderDescriptor.Channels"/>).</param>
    public MffOce(IReadOnlyList<int> channels) : base("MFF_OCE")
    {
        if (channels.Count != 3) throw new ArgumentException($"MFF_OCE fuses 3 feature maps, got {channels.Count} channel counts");
        int c1 = channels[0], c2 = channels[1], c3 = channels[2];
        OutChannels = OceBottleneck.Expansion * c2;
        bn_layer = nn.Sequential(new OceBottleneck(c3, c2, 2), new OceBottleneck(OutChannels, c2, 1), new OceBottleneck(OutChannels, c2, 1));
        conv1 = nn.Conv2d(c1, c2, 3, stride: 2, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(c2);
        conv2 = nn.Conv2d(c2, c3, 3, stride: 2, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(c3);
        conv21 = nn.Conv2d(c2, c2, 1, bias: true);
        bn21 = nn.BatchNorm2d(c2);
        conv31 = nn.Conv2d(c3, c3, 1, bias: true);
        bn31 = nn.BatchNorm2d(c3);
        convf = nn.Conv2d(c3, c3, 1, bias: true);
        bnf = nn.BatchNorm2d(c3);
        RegisterComponents();
        // §3: Kaiming-normal (fan_out, ReLU) for every conv weight, BN 1/0 (no zero-init of the last BN); 1×1 biases keep the default.
        foreach (var m in modules())
        {
            if (m is Conv2d conv) ModelInit.KaimingFanOut(conv);
            else if (m is BatchNorm2d bn) ModelInit.OnesZeros(bn.weight, bn.bias);
        }
    }

    /// <summary>Channels of the fused output Z (512 for ResNet18/34).</summary>
    public int OutChannels { get; }

    /// <param name="features">[F1 (B,C1,4S,4S), F2 (B,C2,2S,2S), F3 (B,C3,S,S)] for a Z side of S/2.</param>
    public override Tensor forward(Tensor[] features)
    {
        if (features.Length != 3) throw new ArgumentException($"MFF_OCE takes 3 feature maps, got {features.Length}");
        using var scope = NewDisposeScope();
        // NCHW copies of the encoder's channels-last features: libtorch's convolutions then run NCHW under autograd,
        // whose gradients are the same bits run after run (channels-last ones were not: LssModule).
        var (f1, f2, f3) = (features[0].contiguous(), features[1].contiguous(), features[2].contiguous());
        var a = nn.functional.relu(bn1.call(conv1.call(f1)));                      // F1 bottom-up, (B,C2,2S,2S)
        var b = nn.functional.relu(bn21.call(conv21.call(f2))) + a;               // lateral add
        var c = nn.functional.relu(bn2.call(conv2.call(b)))
              + nn.functional.relu(bn31.call(conv31.call(f3)));                  // (B,C3,S,S)
        var d = nn.functional.relu(bnf.call(convf.call(c)));
        return bn_layer.call(d).MoveToOuterDisposeScope();                        // OCE, (B,4·C2,S/2,S/2)
    }
}
