using System.CommandLine;
using MambaAD.Encoders;
using MambaAD.Model;
using MambaAD.Ssm;

namespace MambaAD.Cli.Commands;

/// <summary>The options that select a model configuration, shared by the commands that build one.</summary>
internal sealed class ModelOptions
{
    public Option<string> Backbone { get; } = new("--backbone")
    { Description = "Encoder: resnet34 (the paper's) or resnet18", DefaultValueFactory = _ => "resnet34" };

    public Option<int> ImageSize { get; } = new("--image-size")
    { Description = "Square input side, a multiple of 32", DefaultValueFactory = _ => 256 };

    public Option<string> Scan { get; } = new("--scan")
    { Description = "Scan method of the HSS blocks: hilbert, sweep, scan, zorder or zigzag", DefaultValueFactory = _ => "hilbert" };

    public Option<int> Directions { get; } = new("--directions")
    { Description = "Scan directions: 2, 4 or 8", DefaultValueFactory = _ => 8 };

    public Option<string> Depths { get; } = new("--depths")
    { Description = "HSS blocks per decoder stage, comma-separated: 3,4,6,3 (default), 2,2,2,2 or 2,9,2,2", DefaultValueFactory = _ => "3,4,6,3" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Backbone, ImageSize, Scan, Directions, Depths }) command.Options.Add(o);
    }

    /// <summary>The configuration the options give; <paramref name="implicitBackbone"/> replaces the default backbone when --backbone was not given.</summary>
    public MambaADConfig Read(ParseResult parse, Backbone? implicitBackbone = null)
    {
        bool backboneGiven = parse.GetResult(Backbone) is { Implicit: false };
        var depthsText = parse.GetValue(Depths)!;
        var depths = depthsText.Split(',', StringSplitOptions.TrimEntries).Select(d =>
            int.TryParse(d, out var v) && v > 0 ? v : throw new MambaADException($"--depths {depthsText}: '{d}' is not a positive number; use e.g. 3,4,6,3")).ToArray();
        return new MambaADConfig
        {
            Backbone = backboneGiven || implicitBackbone is null ? ParseBackbone(parse.GetValue(Backbone)!) : implicitBackbone.Value,
            ImageSize = parse.GetValue(ImageSize),
            Scan = ScanOrder.Parse(parse.GetValue(Scan)!),
            Directions = parse.GetValue(Directions),
            Depths = depths,
        }.Validate();
    }

    /// <summary>The backbone called <paramref name="name"/>, or a one-line error naming --backbone and the choices.</summary>
    public static Backbone ParseBackbone(string name) =>
        EncoderDescriptor.Find(name) ?? throw new MambaADException($"--backbone {name} is not supported: use {EncoderDescriptor.Names}");
}
