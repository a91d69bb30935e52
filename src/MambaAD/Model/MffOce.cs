using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// MFF_OCE, the paper's Half-FPN bottleneck (spec §3): a bottom-up fusion of the encoder's F1, F2, F3 (64/128/256
/// channels, ResNet18/34) followed by RD4AD's one-class embedding (3 Bottleneck blocks, planes 128, first stride 2):
/// (F1, F2, F3) → Z (B, 512, S/32, S/32). Field order follows the official state_dict (bn_layer first).
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

    /// <summary>Channels of the fused output Z.</summary>
    public const int OutChannels = 512;

    public MffOce() : base("MFF_OCE")
    {
        bn_layer = nn.Sequential(new OceBottleneck(256, 128, 2), new OceBottleneck(512, 128, 1), new OceBottleneck(512, 128, 1));
        conv1 = nn.Conv2d(64, 128, 3, stride: 2, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(128);
        conv2 = nn.Conv2d(128, 256, 3, stride: 2, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(256);
        conv21 = nn.Conv2d(128, 128, 1, bias: true);
        bn21 = nn.BatchNorm2d(128);
        conv31 = nn.Conv2d(256, 256, 1, bias: true);
        bn31 = nn.BatchNorm2d(256);
        convf = nn.Conv2d(256, 256, 1, bias: true);
        bnf = nn.BatchNorm2d(256);
        RegisterComponents();
        // §3: Kaiming-normal (fan_out, ReLU) for every conv weight, BN 1/0 (no zero-init of the last BN); 1×1 biases keep the default.
        foreach (var m in modules())
        {
            if (m is Conv2d conv) ModelInit.KaimingFanOut(conv);
            else if (m is BatchNorm2d bn) ModelInit.OnesZeros(bn.weight, bn.bias);
        }
    }

    /// <param name="features">[F1 (B,64,4S,4S), F2 (B,128,2S,2S), F3 (B,256,S,S)] for a Z side of S/2.</param>
    public override Tensor forward(Tensor[] features)
    {
        if (features.Length != 3) throw new ArgumentException($"MFF_OCE takes 3 feature maps, got {features.Length}");
        using var scope = NewDisposeScope();
        var a = nn.functional.relu(bn1.call(conv1.call(features[0])));             // F1 bottom-up, (B,128,2S,2S)
        var b = nn.functional.relu(bn21.call(conv21.call(features[1]))) + a;      // lateral add
        var c = nn.functional.relu(bn2.call(conv2.call(b)))
              + nn.functional.relu(bn31.call(conv31.call(features[2])));         // (B,256,S,S)
        var d = nn.functional.relu(bnf.call(convf.call(c)));
        return bn_layer.call(d).MoveToOuterDisposeScope();                        // OCE, (B,512,S/2,S/2)
    }
}
