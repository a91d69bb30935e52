namespace MambaAD.Imaging;

/// <summary>
/// The official preprocessing (spec §13), one image or mask at a time, in one place for training, testing,
/// prediction and the server.
/// Image: decode to RGB → PIL bilinear resize to size×size (skipped when already that size, as torchvision does)
/// → per-encoder normalisation (<see cref="InputNormalization"/>) into CHW float32.
/// Mask: decode to grey → (v &gt; 0)·255 → PIL bilinear resize → ToTensor (/255) → &gt; 0.5, i.e. resized ≥ 128.
/// </summary>
internal static class Preprocess
{
    /// <summary>Resizes a decoded image to <paramref name="size"/>² RGB bytes (HWC).</summary>
    public static byte[] ResizedRgb(RgbImage image, int size) =>
        PilResize.Resize(image.Hwc, image.Width, image.Height, 3, size, size);

    /// <summary>Writes the network input for a decoded image into <paramref name="chw"/> (3·size² floats).</summary>
    public static void Image(RgbImage image, int size, InputNormalization normalization, Span<float> chw) =>
        normalization.Normalize(ResizedRgb(image, size), size, size, chw);

    /// <summary>The network input for an image file: 3×size×size float32, channel-planar.</summary>
    public static float[] Image(string path, int size, InputNormalization normalization)
    {
        var chw = new float[3 * size * size];
        Image(ImageDecoder.DecodeRgb(path), size, normalization, chw);
        return chw;
    }

    /// <summary>The binary mask resized ×255 (PIL bilinear on {0, 255}), before the 0.5 threshold.</summary>
    public static byte[] MaskResized(string path, int size)
    {
        var (w, h, grey) = ImageDecoder.DecodeGrey(path);
        return MaskResized(grey, w, h, size);
    }

    /// <summary>The binary mask resized ×255 from decoded grey values.</summary>
    public static byte[] MaskResized(byte[] grey, int width, int height, int size)
    {
        var bin = new byte[grey.Length];
        for (int i = 0; i < bin.Length; i++) bin[i] = grey[i] > 0 ? (byte)255 : (byte)0; // any label value counts (VisA)
        return PilResize.Resize(bin, width, height, 1, size, size);
    }

    /// <summary>The final ground-truth mask in {0, 1} at size×size (§12.6).</summary>
    public static byte[] Mask(string path, int size) => Binarize(MaskResized(path, size));

    /// <summary>
    /// The ground-truth mask of an image of <paramref name="imageWidth"/>×<paramref name="imageHeight"/> pixels, in
    /// {0, 1} at size×size; a mask of another size than its image is an error naming both files.
    /// </summary>
    public static byte[] Mask(string maskPath, string imagePath, int imageWidth, int imageHeight, int size)
    {
        var (w, h, grey) = ImageDecoder.DecodeGrey(maskPath);
        if (w != imageWidth || h != imageHeight)
            throw new MambaADException($"{maskPath}: mask is {w}×{h} but its image {imagePath} is {imageWidth}×{imageHeight} (expected the same size)");
        return Binarize(MaskResized(grey, w, h, size));
    }

    /// <summary>resized/255 &gt; 0.5 ⇔ resized ≥ 128.</summary>
    public static byte[] Binarize(byte[] resized)
    {
        var m = new byte[resized.Length];
        for (int i = 0; i < m.Length; i++) m[i] = resized[i] >= 128 ? (byte)1 : (byte)0;
        return m;
    }
}
