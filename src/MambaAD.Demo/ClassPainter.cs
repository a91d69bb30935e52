namespace MambaAD.Demo;

/// <summary>
/// Paints the defect-free images of one synthetic class. Painters are stateless: everything that varies between
/// images (colour, lighting, phase, position…) is drawn from the <see cref="Random"/> handed to <see cref="Paint"/>.
/// </summary>
internal abstract class ClassPainter
{
    /// <summary>The class folder name.</summary>
    public abstract string Name { get; }

    /// <summary>The defect types of this class (names from <see cref="DefectPainter"/>).</summary>
    public abstract IReadOnlyList<string> DefectTypes { get; }

    /// <summary>Standard deviation of the per-channel sensor noise added after painting (8-bit levels).</summary>
    public virtual double NoiseSigma => 3.0;

    /// <summary>Paints a normal image into <paramref name="buffer"/>; returns where defects may lie.</summary>
    public abstract DefectRegion Paint(RenderBuffer buffer, Random rng);

    /// <summary>Every class, in generation order: textures first, then objects (as in MVTec AD).</summary>
    public static IReadOnlyList<ClassPainter> All { get; } =
        [new CarpetPainter(), new TilePainter(), new WasherPainter(), new CapsulePainter()];

    protected static float Clamp01(double v) => (float)Math.Clamp(v, 0.0, 1.0);
}

/// <summary>
/// Where a defect may be drawn. Defect centres/starts are sampled in the box [MinX, MaxX]×[MinY, MaxY] until
/// <see cref="Contains"/> holds; defect coverage is cut to pixels whose centre satisfies <see cref="Contains"/>
/// (so defects stay on the object of an object class).
/// </summary>
/// <param name="Contains">Whether the pixel centre (x + 0.5, y + 0.5) may carry a defect.</param>
/// <param name="MinX">Left of the box where defect centres are sampled.</param>
/// <param name="MinY">Top of that box.</param>
/// <param name="MaxX">Right of that box.</param>
/// <param name="MaxY">Bottom of that box.</param>
internal sealed record DefectRegion(Func<double, double, bool> Contains, double MinX, double MinY, double MaxX, double MaxY)
{
    /// <summary>The whole image minus a border margin (texture classes).</summary>
    public static DefectRegion Whole(int size, double margin) =>
        new((x, y) => x >= 0 && y >= 0 && x < size && y < size, margin, margin, size - margin, size - margin);
}
