namespace MambaAD.Data;

/// <summary>Per-file problems: an error, or with --skip-bad a listed warning.</summary>
internal sealed class Problems(bool skipBad)
{
    private readonly List<string> _list = [];
    public IReadOnlyList<string> List { get { lock (_list) return [.. _list]; } }
    public void Report(string message)
    {
        if (!skipBad) throw new MambaADException(message, nameof(DatasetOptions.SkipBad));
        lock (_list) _list.Add(message);
    }
}
