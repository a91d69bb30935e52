using System.CommandLine;
using MambaAD.Data;

namespace MambaAD.Cli.Commands;

/// <summary>--data, --dataset, --classes and --skip-bad: the options that open a dataset, shared by the commands that read one.</summary>
internal sealed class DataOptions
{
    public DataOptions(string dataDescription, bool required)
    {
        Data = new Option<string?>("--data") { Description = dataDescription, Required = required };
    }

    public Option<string?> Data { get; }

    public Option<string?> Layout { get; } = new("--dataset")
    { Description = $"Layout instead of detecting it: {string.Join(", ", Dataset.Layouts)}" };

    public Option<string?> Classes { get; } = new("--classes")
    { Description = "Only these classes, comma-separated (default: all)" };

    public Option<bool> SkipBad { get; } = new("--skip-bad")
    { Description = "Skip unreadable or missing files with a listed warning instead of stopping" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Data, Layout, Classes, SkipBad }) command.Options.Add(o);
    }

    /// <summary>The dataset root, or null when --data was not given (only where it is optional).</summary>
    public string? Root(ParseResult parse) => parse.GetValue(Data);

    /// <summary>How to open the dataset: layout, class selection and --skip-bad.</summary>
    public DatasetOptions Read(ParseResult parse) =>
        new(parse.GetValue(Layout), parse.GetValue(Classes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(SkipBad));

    /// <summary>Opens the dataset at --data.</summary>
    public Dataset Open(ParseResult parse) =>
        Dataset.Open(Root(parse) ?? throw new MambaADException("--data is required: the dataset root"), Read(parse));
}
