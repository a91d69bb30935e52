using Xunit.Abstractions;
using System.Collections;
using MambaAD.Imaging;
using TorchSharp;

namespace MambaAD.Tests.Imaging;

/// <summary>
/// Golden preprocessing (shared/golden/preprocess.pt, README "preprocess.pt"): every image and mask through the
/// official PIL/torchvision pipeline. PNGs must be bit-exact; JPEG decoders may differ by ±1 per value, so JPEG
/// cases allow |Δresized_hwc| ≤ 1 and |Δinput| ≤ 0.0176 (one G level, 1/(255·0.224), measured in the README).
/// </summary>
public class PreprocessGoldenTests(ITestOutputHelper output)
{
    private const double JpegInputTolerance = 0.0176;
    private static readonly Lazy<Hashtable> Golden = new(() => TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(SharedData.Golden("preprocess.pt")));

    public static TheoryData<string> ImageFiles() => new()
    {
        "rgb_900x900.png", "rgb_333x517.png", "grey_480x640.png", "rgba_300x300.png", "palette_200x150.png",
        "grey16_128x96.png", "rgb_up_100x80.png", "photo_400x300.jpg", "rgb_256x256.png",
    };

    public static TheoryData<string> MaskFiles() => new()
    {
        "mask_bin_900x900.png", "mask_01_512x384.png", "mask_labels_700x500.png", "mask_333x517.png",
    };

    private static Hashtable Entry(string kind, string file) => (Hashtable)((Hashtable)Golden.Value[kind]!)[file]!;

    private static byte[] Bytes(Hashtable h, string key) => ((torch.Tensor)h[key]!).data<byte>().ToArray();

    [GoldenTheory]
    [MemberData(nameof(ImageFiles))]
    public void Image_matches_official_pipeline(string file)
    {
        var g = Entry("images", file);
        var path = SharedData.Golden(Path.Combine("preprocess", file));
        // The file on disk is the one stored in the .pt.
        Assert.Equal(Bytes(g, "file_bytes"), File.ReadAllBytes(path));

        var decoded = ImageDecoder.DecodeRgb(path);
        var resized = Preprocess.ResizedRgb(decoded, 256);
        var input = Preprocess.Image(path, 256, InputNormalization.ImageNet);
        var wantRgb = Bytes(g, "rgb_hwc");
        var wantResized = Bytes(g, "resized_hwc");
        var wantInput = ((torch.Tensor)g["input"]!).data<float>().ToArray();

        bool jpeg = file.EndsWith(".jpg", StringComparison.Ordinal);
        int maxResized = MaxAbs(resized, wantResized);
        double maxInput = wantInput.Select((v, i) => Math.Abs(v - input[i])).Max();
        output.WriteLine($"{file}: max |Δresized_hwc| = {maxResized}, max |Δinput| = {maxInput:G6}");
        if (jpeg)
        {
            Assert.True(maxResized <= 1, $"{file}: max |Δresized_hwc| = {maxResized} > 1");
            Assert.True(maxInput <= JpegInputTolerance, $"{file}: max |Δinput| = {maxInput} > {JpegInputTolerance}");
        }
        else
        {
            Assert.Equal(wantRgb.Length, decoded.Hwc.Length);
            Assert.True(MaxAbs(decoded.Hwc, wantRgb) == 0, $"{file}: decoded RGB differs by up to {MaxAbs(decoded.Hwc, wantRgb)}");
            Assert.True(maxResized == 0, $"{file}: resized differs by up to {maxResized}");
            Assert.True(maxInput == 0, $"{file}: input differs by up to {maxInput}");
        }
    }

    [GoldenTheory]
    [MemberData(nameof(MaskFiles))]
    public void Mask_matches_official_pipeline(string file)
    {
        var g = Entry("masks", file);
        var path = SharedData.Golden(Path.Combine("preprocess", file));
        var resized = Preprocess.MaskResized(path, 256);
        Assert.Equal(Bytes(g, "resized"), resized);
        Assert.Equal(Bytes(g, "final"), Preprocess.Binarize(resized));
        Assert.Equal(Bytes(g, "final"), Preprocess.Mask(path, 256));
    }

    private static int MaxAbs(byte[] a, byte[] b)
    {
        Assert.Equal(b.Length, a.Length);
        int m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
