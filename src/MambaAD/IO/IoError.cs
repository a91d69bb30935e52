namespace MambaAD.IO;

/// <summary>
/// Turns the exceptions of a failed file operation into the few words a user needs ("no space left on the device",
/// "permission denied"), so that writers can report one line naming their own path instead of a temporary file's.
/// </summary>
internal static class IoError
{
    /// <summary>Whether <paramref name="e"/> is a failure of the file system rather than a bug.</summary>
    /// <remarks>.NET reports EFBIG (a file-size limit, <c>ulimit -f</c>) as an <see cref="ArgumentOutOfRangeException"/> from a write.</remarks>
    public static bool Is(Exception e) =>
        e is IOException or UnauthorizedAccessException || e is ArgumentOutOfRangeException { ParamName: "value" };

    /// <summary>The reason in words: the errno's meaning for the common cases, else the system's message.</summary>
    public static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        ArgumentOutOfRangeException => "the file would exceed the size limit of the file system or of this process",
        DirectoryNotFoundException => "a folder on the path does not exist",
        IOException { HResult: 28 } => "no space left on the device",
        IOException { HResult: 122 } => "the disk quota is exceeded",
        IOException { HResult: 30 } => "the file system is read-only",
        IOException { HResult: 27 } => "the file would exceed the size limit of the file system or of this process",
        IOException { HResult: 5 } => "the device reported an input/output error",
        _ => e.Message.Split('\n')[0].Trim(),
    };
}
