namespace MambaAD.Bench;

/// <summary>The harnesses' options: <c>--name value</c> pairs.</summary>
internal static class BenchArgs
{
    /// <summary>The value after <paramref name="name"/>, or <paramref name="fallback"/> when the option is absent.</summary>
    public static string Opt(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
