using MambaAD.Data.Layouts;

namespace MambaAD.Data;

/// <summary>
/// A benchmark dataset opened for the multi-class setting (spec §15): the training set is the union of all selected
/// classes' normal images; test samples keep class, defect type and mask path.
/// </summary>
public sealed class Dataset
{
    /// <summary>The data root.</summary>
    public string Root { get; }

    /// <summary>The layout it was read as (one of <see cref="Layouts"/>).</summary>
    public string Layout { get; }

    /// <summary>The selected classes, in the dataset's order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Normal training images of every selected class.</summary>
    public IReadOnlyList<Sample> Train { get; }

    /// <summary>Test images of every selected class.</summary>
    public IReadOnlyList<Sample> Test { get; }

    /// <summary>Problems skipped because of <see cref="DatasetOptions.SkipBad"/>, one line each naming the file.</summary>
    public IReadOnlyList<string> Warnings { get; }

    internal Dataset(string root, string layout, IReadOnlyList<string> classes, IReadOnlyList<Sample> train,
        IReadOnlyList<Sample> test, IReadOnlyList<string> warnings)
    {
        Root = root; Layout = layout; ClassNames = classes; Train = train; Test = test; Warnings = warnings;
    }

    /// <summary>The layout names a dataset can be read as (<see cref="DatasetOptions.Layout"/>), in detection order.</summary>
    public static IReadOnlyList<string> Layouts => DatasetLayouts.Names;

    /// <summary>Opens the dataset at <paramref name="root"/>, detecting its layout unless one is given.</summary>
    /// <exception cref="MambaADException">Unknown layout, unknown class, empty class, missing mask, unreadable index file.</exception>
    public static Dataset Open(string root, DatasetOptions? options = null)
    {
        options ??= new DatasetOptions();
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new MambaADException($"{root}: data folder not found");
        var reader = options.Layout is { } name ? DatasetLayouts.Named(name) : DatasetLayouts.Detect(root);
        string layout = reader.Name;
        var problems = new Problems(options.SkipBad);
        var raw = reader.Read(root, problems);
        var classes = Select(root, raw.Classes, options.Classes);
        var train = new List<Sample>();
        var test = new List<Sample>();
        var kept = new List<string>();
        foreach (var c in classes)
        {
            var tr = raw.Train.Where(s => s.ClassName == c).ToList();
            var te = raw.Test.Where(s => s.ClassName == c).ToList();
            if (tr.Count == 0 || te.Count == 0)
            {
                problems.Report($"{root}: class '{c}' is empty: {tr.Count} training and {te.Count} test images (expected normal training images and test images)");
                continue;
            }
            kept.Add(c);
            train.AddRange(tr);
            test.AddRange(te);
        }
        if (kept.Count == 0) throw new MambaADException($"{root}: no class with both training and test images ({layout} layout)");
        return new Dataset(root, layout, kept, train, test, problems.List);
    }

    private static List<string> Select(string root, IReadOnlyList<string> all, IReadOnlyList<string>? wanted)
    {
        if (wanted is null || wanted.Count == 0) return [.. all];
        foreach (var w in wanted)
            if (!all.Contains(w))
                throw new MambaADException($"'{w}' is not a class of {root}; its classes are {string.Join(", ", all)}", nameof(DatasetOptions.Classes));
        return [.. wanted.Distinct()];
    }
}
