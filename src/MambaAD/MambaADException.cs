namespace MambaAD;

/// <summary>
/// The one exception type for errors a user can cause (a path, a dataset layout, a corrupt image, a checkpoint that
/// does not fit). Its message names the file or option and the fix, in one line; the CLI prints it and exits non-zero.
/// Anything else that escapes is a bug and keeps its stack trace.
/// </summary>
public sealed class MambaADException : Exception
{
    public MambaADException(string message) : base(message) { }
    public MambaADException(string message, Exception inner) : base(message, inner) { }
}
