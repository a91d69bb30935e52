namespace MambaAD.Demo;

/// <summary>
/// A square float RGB scene (nominal range 0–255, interleaved HWC) that painters draw into before it is quantised
/// to 8-bit once. Keeping floats until the end lets the defect-free and the defective rendering share every value
/// outside the defect exactly.
/// </summary>
internal sealed class RenderBuffer
{
    public int Size { get; }
    public float[] Rgb { get; }

    public RenderBuffer(int size)
    {
        Size = size;
        Rgb = new float[size * size * 3];
    }

    private RenderBuffer(int size, float[] rgb) { Size = size; Rgb = rgb; }

    public RenderBuffer Clone() => new(Size, (float[])Rgb.Clone());

    public void Set(int x, int y, float r, float g, float b)
    {
        int i = 3 * (y * Size + x);
        Rgb[i] = r; Rgb[i + 1] = g; Rgb[i + 2] = b;
    }

    /// <summary>Blends (r, g, b) over pixel (x, y) with opacity <paramref name="a"/> in [0, 1].</summary>
    public void Blend(int x, int y, float r, float g, float b, float a)
    {
        int i = 3 * (y * Size + x);
        Rgb[i] += (r - Rgb[i]) * a;
        Rgb[i + 1] += (g - Rgb[i + 1]) * a;
        Rgb[i + 2] += (b - Rgb[i + 2]) * a;
    }

    /// <summary>Rec. 601 luma of pixel (x, y).</summary>
    public float Luma(int x, int y)
    {
        int i = 3 * (y * Size + x);
        return 0.299f * Rgb[i] + 0.587f * Rgb[i + 1] + 0.114f * Rgb[i + 2];
    }

    /// <summary>Quantises to 8-bit RGB after adding <paramref name="noise"/> (same length as <see cref="Rgb"/>), rounding half away from zero.</summary>
    public byte[] ToBytes(float[] noise)
    {
        var bytes = new byte[Rgb.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            float v = MathF.Round(Rgb[i] + noise[i], MidpointRounding.AwayFromZero);
            bytes[i] = (byte)Math.Clamp(v, 0f, 255f);
        }
        return bytes;
    }
}
