using SkiaSharp;

namespace MambaAD.Tests.Data;

/// <summary>Writes small generated datasets into a temporary folder (deleted on dispose).</summary>
internal sealed class TinyData : IDisposable
{
    public string Root { get; }

    public TinyData(string name = "tiny")
    {
        Root = Path.Combine(Directory.CreateTempSubdirectory("mambaad-data").FullName, name);
        Directory.CreateDirectory(Root);
    }

    public void Dispose()
    {
        try { Directory.Delete(Path.GetDirectoryName(Root)!, true); } catch (IOException) { }
    }

    public string P(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>An RGB PNG with a deterministic pattern.</summary>
    public static void WriteImage(string path, int w, int h, int seed = 0)
    {
        var rng = new Random(seed);
        var px = new byte[w * h * 3];
        rng.NextBytes(px);
        WritePng(path, w, h, (x, y) => new SKColor(px[(y * w + x) * 3], px[(y * w + x) * 3 + 1], px[(y * w + x) * 3 + 2]));
    }

    /// <summary>A grey mask PNG: 255 inside the rectangle [x0, x1) × [y0, y1).</summary>
    public static void WriteMask(string path, int w, int h, int x0, int y0, int x1, int y1) =>
        WritePng(path, w, h, (x, y) => x >= x0 && x < x1 && y >= y0 && y < y1 ? SKColors.White : SKColors.Black);

    private static void WritePng(string path, int w, int h, Func<int, int, SKColor> color)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bmp.SetPixel(x, y, color(x, y));
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>
    /// An MVTec-style class: 3 train/good, 2 test/good, 2 test/scratch (40×30 images). With masks, ground_truth/scratch
    /// holds &lt;stem&gt;_mask.png rectangles.
    /// </summary>
    public void MvtecClass(string cls, bool masks = true, string normal = "good", string defect = "scratch")
    {
        for (int i = 0; i < 3; i++) WriteImage(P(cls, "train", normal, $"{i:000}.png"), 40, 30, i);
        for (int i = 0; i < 2; i++) WriteImage(P(cls, "test", normal, $"{i:000}.png"), 40, 30, 10 + i);
        for (int i = 0; i < 2; i++)
        {
            WriteImage(P(cls, "test", defect, $"{i:000}.png"), 40, 30, 20 + i);
            if (masks) WriteMask(P(cls, "ground_truth", defect, $"{i:000}_mask.png"), 40, 30, 5 + 10 * i, 5, 15 + 10 * i, 20);
        }
    }
}
