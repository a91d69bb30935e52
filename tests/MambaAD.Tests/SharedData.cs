namespace MambaAD.Tests;

/// <summary>
/// Locates <c>../shared</c> (golden tensors and real data) beside the repository clone, or at <c>MAMBAAD_SHARED</c>.
/// Tests that need it use <see cref="GoldenFactAttribute"/> / <see cref="SharedDataFactAttribute"/>, which skip with
/// a reason on a fresh clone without it. CI has it, so there they run.
/// </summary>
public static class SharedData
{
    public static readonly string? Root = Locate();

    public static string? GoldenDir => Root is null ? null : Existing(Path.Combine(Root, "golden"));
    public static string? DataDir => Root is null ? null : Existing(Path.Combine(Root, "data"));

    public static string Golden(string file) =>
        Path.Combine(GoldenDir ?? throw new InvalidOperationException("shared/golden is missing"), file);

    private static string? Existing(string p) => Directory.Exists(p) ? p : null;

    private static string? Locate()
    {
        var env = Environment.GetEnvironmentVariable("MAMBAAD_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        return Existing(Path.Combine(RepoRoot.Path, "..", "shared")) is { } s ? Path.GetFullPath(s) : null;
    }
}

/// <summary>A fact that needs <c>../shared/golden</c>; skipped with a reason when it is absent.</summary>
public sealed class GoldenFactAttribute : FactAttribute
{
    public GoldenFactAttribute()
    {
        if (SharedData.GoldenDir is null) Skip = "needs ../shared/golden beside the clone (or MAMBAAD_SHARED): golden tensors from the official model";
    }
}

/// <summary>A theory that needs <c>../shared/golden</c>; skipped with a reason when it is absent.</summary>
public sealed class GoldenTheoryAttribute : TheoryAttribute
{
    public GoldenTheoryAttribute()
    {
        if (SharedData.GoldenDir is null) Skip = "needs ../shared/golden beside the clone (or MAMBAAD_SHARED): golden tensors from the official model";
    }
}

/// <summary>A fact that needs <c>../shared/data</c> (real defect images); skipped with a reason when it is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute()
    {
        if (SharedData.DataDir is null) Skip = "needs ../shared/data beside the clone (or MAMBAAD_SHARED): real defect images";
    }
}
