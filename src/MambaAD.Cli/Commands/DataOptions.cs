using System.CommandLine;
using MambaAD.Data;
using MambaAD.Imaging;

namespace MambaAD.Cli.Commands;

/// <summary>--data, --dataset, --classes, --skip-bad and --max-image-pixels: the options that open a dataset, shared by the commands that read one.</summary>
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

    public Option<long> MaxImagePixels { get; } = new("--max-image-pixels")
    {
        Description = $"Largest image decoded, width × height, checked in its header before decoding (bounds memory; default {ImageLimits.DefaultMaxPixels} = 8192²)",
        DefaultValueFactory = _ => ImageLimits.DefaultMaxPixels,
    };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Data, Layout, Classes, SkipBad, MaxImagePixels }) command.Options.Add(o);
    }

    /// <summary>Sets the process-wide image size limit from --max-image-pixels (before any image is read).</summary>
    public void ApplyImageLimit(ParseResult parse) => ImageLimits.MaxPixels = parse.GetValue(MaxImagePixels);

    /// <summary>The dataset root, or null when --data was not given (only where it is optional).</summary>
    public string? Root(ParseResult parse) => parse.GetValue(Data);

    /// <summary>How to open the dataset: layout, class selection and --skip-bad (and the image limit, set process-wide).</summary>
    public DatasetOptions Read(ParseResult parse)
    {
        ApplyImageLimit(parse);
        return new(parse.GetValue(Layout), parse.GetValue(Classes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(SkipBad));
    }

    /// <summary>Opens the dataset at --data.</summary>
    public Dataset Open(ParseResult parse) =>
        Dataset.Open(Root(parse) ?? throw new MambaADException("--data is required: the dataset root"), Read(parse));
}
