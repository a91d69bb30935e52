namespace MambaAD.Data;

/// <summary>How to open a dataset.</summary>
/// <param name="Layout">A layout name from <see cref="Dataset.Layouts"/> to skip detection (<c>--dataset</c>), or null to detect.</param>
/// <param name="Classes">Only these classes (<c>--classes a,b</c>), in this order; null for all.</param>
/// <param name="SkipBad">Turn per-file problems into listed warnings (<see cref="Dataset.Warnings"/>) instead of errors.</param>
public sealed record DatasetOptions(string? Layout = null, IReadOnlyList<string>? Classes = null, bool SkipBad = false);
