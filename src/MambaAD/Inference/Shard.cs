using System.Globalization;

namespace MambaAD.Inference;

/// <summary>
/// Part <see cref="Index"/> of <see cref="Count"/> of a <c>predict</c> run (<c>--shard I/N</c>): a contiguous range of
/// whole batches of the sorted input list, so that shard outputs in index order concatenate to the single run's.
/// Whole batches, because a forward pass's last bits depend on the batch it runs in: every shard, and every resumed
/// run, forms the same batches as the single run (with the same <c>--batch</c>).
/// </summary>
internal readonly record struct Shard(int Index, int Count)
{
    /// <summary>The whole run.</summary>
    public static Shard All => new(0, 1);

    /// <summary>Parses <c>I/N</c> with 0 ≤ I &lt; N.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 && i < n)
            return new Shard(i, n);
        throw new MambaADException($"'{text}' is not a shard: give I/N with 0 ≤ I < N, e.g. 0/4 for the first of four", "Shard");
    }

    /// <summary>The inputs [Start, End) of this shard among <paramref name="files"/> inputs in batches of <paramref name="batch"/>.</summary>
    public (int Start, int End) Range(int files, int batch)
    {
        long batches = (files + (long)batch - 1) / batch;
        long first = batches * Index / Count, last = batches * (Index + 1) / Count;
        return ((int)Math.Min(files, first * batch), (int)Math.Min(files, last * batch));
    }

    /// <inheritdoc />
    public override string ToString() => $"{Index}/{Count}";
}
