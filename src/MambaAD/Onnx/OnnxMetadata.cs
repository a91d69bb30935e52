using System.Globalization;
using System.Reflection;
using System.Text.Json;
using MambaAD.Checkpoints;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Model;
using MambaAD.Ssm;

namespace MambaAD.Onnx;

/// <summary>
/// The metadata_props of an exported model: everything a user needs to prepare its input and read its output, in
/// plain strings (numbers in invariant culture, lists comma-separated, class names as a JSON array).
/// </summary>
public static class OnnxMetadata
{
    /// <summary>The project version that exported the model.</summary>
    public const string Version = "mambaad.version";
    /// <summary>The square input side S.</summary>
    public const string ImageSize = "mambaad.image_size";
    /// <summary>"RGB" or "BGR": the order of the input's channels.</summary>
    public const string ChannelOrder = "mambaad.channel_order";
    /// <summary>The normalisation's name ("imagenet" or "bgr-mean").</summary>
    public const string Normalization = "mambaad.normalization";
    /// <summary>Per input channel, the mean subtracted (comma-separated).</summary>
    public const string Mean = "mambaad.mean";
    /// <summary>Per input channel, the divisor (comma-separated).</summary>
    public const string Std = "mambaad.std";
    /// <summary>The factor applied to 0–255 pixels before the mean (1/255 or 1).</summary>
    public const string Scale = "mambaad.scale";
    /// <summary>The encoder ("resnet18" or "resnet34").</summary>
    public const string Backbone = "mambaad.backbone";
    /// <summary>Where the encoder's weights came from.</summary>
    public const string EncoderWeights = "mambaad.encoder_weights";
    /// <summary>The scan method of the HSS blocks.</summary>
    public const string Scan = "mambaad.scan";
    /// <summary>Scan directions K (2, 4 or 8).</summary>
    public const string Directions = "mambaad.directions";
    /// <summary>HSS blocks per decoder stage (comma-separated).</summary>
    public const string Depths = "mambaad.depths";
    /// <summary>The state size N.</summary>
    public const string DState = "mambaad.d_state";
    /// <summary>How the recurrence is written ("sequential" or "chunked:N").</summary>
    public const string ScanFormulation = "mambaad.scan_formulation";
    /// <summary>The classes the model learnt, as a JSON array.</summary>
    public const string Classes = "mambaad.classes";
    /// <summary>The calibrated image threshold, or empty.</summary>
    public const string ImageThreshold = "mambaad.image_threshold";
    /// <summary>The calibrated pixel threshold, or empty.</summary>
    public const string PixelThreshold = "mambaad.pixel_threshold";
    /// <summary>How the thresholds were chosen.</summary>
    public const string ThresholdMethod = "mambaad.threshold_method";
    /// <summary>"true": every BatchNorm is folded into its convolution.</summary>
    public const string BatchNormFolded = "mambaad.batchnorm_folded";

    /// <summary>This library's version (the assembly's informational version without the commit).</summary>
    public static string ProjectVersion { get; } =
        typeof(OnnxMetadata).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    internal static IEnumerable<(string Key, string Value)> From(MambaADConfig config, CheckpointInfo info, OnnxExportOptions options)
    {
        var n = info.Normalization;
        yield return (Version, ProjectVersion);
        yield return (ImageSize, Num(config.ImageSize));
        yield return (ChannelOrder, n.ChannelOrder == Imaging.ChannelOrder.Bgr ? "BGR" : "RGB");
        yield return (Normalization, n.Name);
        yield return (Mean, string.Join(",", n.Mean.Select(Num)));
        yield return (Std, string.Join(",", n.Std.Select(Num)));
        yield return (Scale, Num(n.Scale));
        yield return (Backbone, EncoderDescriptor.Of(config.Backbone).Name);
        yield return (EncoderWeights, info.EncoderWeights);
        yield return (Scan, ScanOrder.Name(config.Scan));
        yield return (Directions, Num(config.Directions));
        yield return (Depths, string.Join(",", config.Depths));
        yield return (DState, Num(config.DState));
        yield return (ScanFormulation, options.ScanFormulation == Onnx.ScanFormulation.Chunked
            ? $"chunked:{Num(options.ScanChunk)}" : "sequential");
        yield return (Classes, JsonSerializer.Serialize(info.Classes));
        yield return (ImageThreshold, info.Thresholds?.Image is { } it ? Num(it) : "");
        yield return (PixelThreshold, info.Thresholds?.Pixel is { } pt ? Num(pt) : "");
        yield return (ThresholdMethod, info.Thresholds?.Method ?? "");
        yield return (BatchNormFolded, "true");
    }

    /// <summary>Reads the input normalisation back; <paramref name="origin"/> names the file in errors.</summary>
    internal static InputNormalization ReadNormalization(IReadOnlyDictionary<string, string> meta, string origin)
    {
        var order = Get(meta, ChannelOrder, origin) switch
        {
            "RGB" => Imaging.ChannelOrder.Rgb,
            "BGR" => Imaging.ChannelOrder.Bgr,
            _ => throw Bad(origin, ChannelOrder, "RGB or BGR"),
        };
        return new(Get(meta, Normalization, origin), order, Floats(meta, Mean, origin, 3), Floats(meta, Std, origin, 3),
            Floats(meta, Scale, origin, 1)[0]);
    }

    /// <summary>
    /// What the model says of itself, as a checkpoint's description: the configuration, encoder weights, normalisation,
    /// classes and thresholds (an export carries no training state).
    /// </summary>
    internal static CheckpointInfo ReadInfo(IReadOnlyDictionary<string, string> meta, string origin)
    {
        int Int(string key) => int.TryParse(Get(meta, key, origin), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v
            : throw Bad(origin, key, "a positive integer");
        var config = new MambaADConfig
        {
            Backbone = EncoderDescriptor.Find(Get(meta, Backbone, origin)) ?? throw Bad(origin, Backbone, $"one of {EncoderDescriptor.Names}"),
            ImageSize = ReadImageSize(meta, origin),
            Scan = ScanType(Get(meta, Scan, origin), origin),
            Directions = Int(Directions),
            Depths = Get(meta, Depths, origin).Split(',').Select(d => int.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                : throw Bad(origin, Depths, "comma-separated integers")).ToArray(),
            DState = Int(DState),
        };
        return new CheckpointInfo(CheckpointInfo.CurrentFormat, config, meta.GetValueOrDefault(EncoderWeights, ""), ReadNormalization(meta, origin),
            ReadClasses(meta, origin), ReadThresholds(meta), null, "");
    }

    private static ScanType ScanType(string name, string origin)
    {
        try { return ScanOrder.Parse(name); }
        catch (MambaADException) { throw Bad(origin, Scan, "sweep, scan, zorder, zigzag or hilbert"); }
    }

    internal static int ReadImageSize(IReadOnlyDictionary<string, string> meta, string origin) =>
        int.TryParse(Get(meta, ImageSize, origin), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) && s > 0 ? s
            : throw Bad(origin, ImageSize, "a positive integer");

    internal static IReadOnlyList<string> ReadClasses(IReadOnlyDictionary<string, string> meta, string origin)
    {
        try { return JsonSerializer.Deserialize<string[]>(Get(meta, Classes, origin)) ?? []; }
        catch (JsonException) { throw Bad(origin, Classes, "a JSON array of strings"); }
    }

    internal static Thresholds? ReadThresholds(IReadOnlyDictionary<string, string> meta)
    {
        double? Opt(string key) => meta.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
        var image = Opt(ImageThreshold);
        var pixel = Opt(PixelThreshold);
        return image is null && pixel is null ? null : new Thresholds(image, pixel, meta.GetValueOrDefault(ThresholdMethod, ""));
    }

    private static string Get(IReadOnlyDictionary<string, string> meta, string key, string origin) =>
        meta.TryGetValue(key, out var v) ? v
            : throw new MambaADException($"{origin} has no metadata '{key}': it is not a MambaAD export; export it with mambaad export");

    private static float[] Floats(IReadOnlyDictionary<string, string> meta, string key, string origin, int count)
    {
        var parts = Get(meta, key, origin).Split(',');
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i])) throw Bad(origin, key, $"{count} numbers");
        return values.Length == count ? values : throw Bad(origin, key, $"{count} numbers");
    }

    private static MambaADException Bad(string origin, string key, string what) =>
        new($"{origin}: metadata '{key}' is not {what}; re-export the model with mambaad export");

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string Num(float v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);
}
