namespace MambaAD;

/// <summary>
/// The one exception type for errors a user can cause (a path, a dataset layout, a corrupt image, a checkpoint that
/// does not fit). Its message says what is wrong and the fix, in one line, naming the file; the CLI prints it and
/// exits non-zero. Anything else that escapes is a bug and keeps its stack trace.
/// </summary>
public sealed class MambaADException : Exception
{
    /// <summary>An error about a file, data or state.</summary>
    public MambaADException(string message) : base(message) { }

    /// <summary>An error caused by <paramref name="inner"/>.</summary>
    public MambaADException(string message, Exception inner) : base(message, inner) { }

    /// <summary>An error in the value of one setting, named by its library property (e.g. <c>nameof(TrainingOptions.LearningRate)</c>).</summary>
    public MambaADException(string message, string setting) : base(message) => Setting = setting;

    /// <summary>
    /// The library setting at fault (a property name such as "LearningRate" or "ImageSize"), or null: a front end
    /// names its own option for it (the CLI prints <c>--lr</c>), so the library need not know the command line.
    /// </summary>
    public string? Setting { get; }
}
