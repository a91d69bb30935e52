namespace MambaAD.Data.Layouts;

/// <summary>
/// One benchmark's way of laying out images, masks and splits on disk (spec §15). A new layout is one class that
/// implements this, and one line in <see cref="DatasetLayouts.All"/>.
/// </summary>
internal interface IDatasetLayout
{
    /// <summary>The name <c>--dataset</c> takes and model.json records.</summary>
    string Name { get; }

    /// <summary>What the layout looks like on disk, in a few words, for the error that lists the layouts.</summary>
    string Looks { get; }

    /// <summary>Whether <paramref name="root"/> looks like this layout (detection tries the layouts in order).</summary>
    bool Matches(string root);

    /// <summary>Every class's samples; per-file problems go to <paramref name="problems"/>.</summary>
    RawDataset Read(string root, Problems problems);
}

/// <summary>Samples of all classes as a layout reader finds them, before selection.</summary>
internal sealed record RawDataset(IReadOnlyList<string> Classes, List<Sample> Train, List<Sample> Test);
