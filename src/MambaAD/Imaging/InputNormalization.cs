namespace MambaAD.Imaging;

/// <summary>
/// How an encoder's weights expect their input: each weight source carries its own (timm's pretrained cfg idea),
/// so trainer, predictor and server never keep a second copy.
/// value[c] = (pixel[c]·<see cref="Scale"/> − <see cref="Mean"/>[c]) / <see cref="Std"/>[c], channels in
/// <see cref="ChannelOrder"/>, computed in float32 in exactly that order (torchvision ToTensor + Normalize).
/// </summary>
/// <param name="Name">"imagenet" (PyTorch weights, spec §13) or "bgr-mean" (the embedded CNTK ResNet18).</param>
/// <param name="ChannelOrder">The order of the tensor's channels.</param>
/// <param name="Mean">Per tensor channel, in <paramref name="ChannelOrder"/>.</param>
/// <param name="Std">Per tensor channel.</param>
/// <param name="Scale">1/255 for ToTensor-style inputs, 1 for 0–255 inputs.</param>
public sealed record InputNormalization(string Name, ChannelOrder ChannelOrder, float[] Mean, float[] Std, float Scale)
{
    /// <summary>ImageNet mean/std on RGB in [0, 1]: the official pipeline (spec §13).</summary>
    public static InputNormalization ImageNet { get; } =
        new("imagenet", ChannelOrder.Rgb, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], 1f / 255f);

    /// <summary>
    /// The embedded ResNet18 (CNTK export): BGR 0–255 minus per-channel means, no std division.
    /// The package's own ResNetPreprocess.onnx subtracts a per-pixel 3×224×224 mean image (B 95.3–115.8,
    /// G 109.1–126.2, R 118.7–129.5); MambaAD runs at 256² (and other sizes), where that image does not apply, so we
    /// subtract its per-channel averages (103.062624, 115.902882, 123.151631, measured by EmbeddedEncoderTests).
    /// </summary>
    public static InputNormalization BgrMean { get; } =
        new("bgr-mean", ChannelOrder.Bgr, [103.062624f, 115.902882f, 123.151631f], [1f, 1f, 1f], 1f);

    /// <summary>
    /// Normalises an interleaved RGB image (H·W·3 bytes) into a planar CHW float buffer.
    /// For ImageNet this is bit-exact with torchvision: (u8 / 255f − mean) / std.
    /// </summary>
    public void Normalize(ReadOnlySpan<byte> rgbHwc, int height, int width, Span<float> chw)
    {
        int plane = height * width;
        if (rgbHwc.Length != plane * 3) throw new ArgumentException($"expected {plane * 3} bytes for {width}×{height} RGB, got {rgbHwc.Length}");
        if (chw.Length != plane * 3) throw new ArgumentException($"expected an output of {plane * 3} floats, got {chw.Length}");
        bool bgr = ChannelOrder == ChannelOrder.Bgr;
        for (int c = 0; c < 3; c++)
        {
            int src = bgr ? 2 - c : c;
            float mean = Mean[c], std = Std[c];
            var dst = chw.Slice(c * plane, plane);
            bool toUnit = Scale == 1f / 255f;
            for (int i = 0; i < plane; i++)
            {
                float v = rgbHwc[i * 3 + src];
                v = toUnit ? v / 255f : v * Scale; // torchvision divides by 255: keep the division for bit-exactness
                dst[i] = (v - mean) / std;
            }
        }
    }
}
