using System.Collections;
using MambaAD.Imaging;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MambaAD.Encoders;

/// <summary>
/// Pretrained weights for a <see cref="ResNetEncoder"/>, together with the input normalisation they expect
/// (each source carries its own, timm's pretrained-cfg idea). Two sources:
/// <see cref="FromFile(string, Backbone)"/> (a PyTorch <c>.pth</c>/<c>.pt</c> or <c>.safetensors</c> file: timm,
/// torchvision, or a whole official MambaAD checkpoint; ImageNet normalisation) and <see cref="Embedded"/> (the ImageNet
/// ResNet18 shipped in <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>; BGR-mean normalisation).
/// Holds CPU tensors until disposed.
/// </summary>
internal partial class EncoderWeights : IDisposable
{
    /// <summary>Package and version of the embedded ResNet18.</summary>
    public const string EmbeddedPackage = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1";

    private readonly Dictionary<string, Tensor> _tensors;
    private readonly string _description;

    private EncoderWeights(Backbone backbone, Dictionary<string, Tensor> tensors, InputNormalization normalization, string description)
    {
        Backbone = backbone;
        _tensors = tensors;
        Normalization = normalization;
        _description = description;
    }

    /// <summary>The backbone these weights fit.</summary>
    public Backbone Backbone { get; }

    /// <summary>How inputs must be normalised for these weights.</summary>
    public InputNormalization Normalization { get; }

    /// <summary>Where the weights come from, for logs and reports, e.g. "file /x/resnet34.pth (ignored fc.*)".</summary>
    public string Describe() => _description;

    /// <summary>The encoder state_dict entries, keyed by timm/torchvision names (internal: tests and checkpoints).</summary>
    internal IReadOnlyDictionary<string, Tensor> Tensors => _tensors;

    /// <summary>Creates a <see cref="ResNetEncoder"/> of <see cref="Backbone"/> and loads these weights into it.</summary>
    public ResNetEncoder CreateEncoder()
    {
        var encoder = new ResNetEncoder(Backbone);
        LoadInto(encoder);
        return encoder;
    }

    /// <summary>Copies the weights into <paramref name="encoder"/> (same backbone, any device).</summary>
    /// <exception cref="MambaADException">When the encoder's backbone differs from <see cref="Backbone"/>.</exception>
    public void LoadInto(ResNetEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (encoder.Backbone != Backbone)
            throw new MambaADException($"encoder weights from {_description} are for {EncoderDescriptor.Of(Backbone).Name}, but the encoder is {EncoderDescriptor.Of(encoder.Backbone).Name}; choose the backbone {EncoderDescriptor.Of(Backbone).Name} or other weights");
        using var _ = no_grad();
        foreach (var (key, dst) in encoder.state_dict())
        {
            if (!_tensors.TryGetValue(key, out var src)) continue; // only num_batches_tracked may be absent (validated)
            if (src.numel() != dst.numel())
                throw new InvalidOperationException($"{key}: {src.numel()} values for {dst.numel()}"); // validated earlier: a bug
            dst.copy_(src.reshape(dst.shape).to(dst.dtype, dst.device));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // PyTorch files

    /// <summary>
    /// Reads encoder weights from a PyTorch zip-format <c>.pth</c>/<c>.pt</c> or a <c>.safetensors</c> file. Accepts a
    /// bare timm/torchvision state_dict (<c>fc.*</c> and <c>layer4.*</c> are ignored), a <c>{"state_dict": …}</c> or
    /// <c>{"net": …}</c> wrapper, and a whole official MambaAD checkpoint (keys under <c>net_t.</c>; the rest is
    /// ignored). Normalisation: ImageNet.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="backbone">The architecture the file holds (ResNet34 is the paper's).</param>
    /// <exception cref="MambaADException">When the file is absent, unreadable, or does not hold the backbone's weights.</exception>
    public static EncoderWeights FromFile(string path, Backbone backbone = Backbone.ResNet34)
    {
        ArgumentNullException.ThrowIfNull(path);
        var expected = ExpectedShapes(backbone);
        var top = IO.PyTorchFile.Read(path, "encoder weights file");
        try
        {
            var (found, ignored) = SelectEncoderEntries(top, expected);
            var tensors = Validate(found, expected, backbone, $"encoder weights file {path}");
            string note = ignored.Count > 0 ? $" (ignored {string.Join(", ", ignored.Select(p => p + ".*"))})" : "";
            return new EncoderWeights(backbone, tensors, InputNormalization.ImageNet, $"file {path}{note}");
        }
        finally
        {
            IO.PyTorchFile.DisposeAll(top);
        }
    }

    /// <summary>
    /// Finds the encoder's entries: in the top level or under "state_dict"/"net"/"model", stripping "net_t." when the
    /// dict is a whole MambaAD model. Returns them with the top-level prefixes that were ignored.
    /// </summary>
    internal static (Dictionary<string, Tensor> Found, List<string> Ignored) SelectEncoderEntries(
        Hashtable top, IReadOnlyDictionary<string, long[]> expected)
    {
        Hashtable? dict = null;
        foreach (var candidate in new[] { top, top["state_dict"] as Hashtable, top["net"] as Hashtable, top["model"] as Hashtable })
        {
            if (candidate is null) continue;
            if (candidate.Keys.OfType<string>().Any(k => candidate[k] is Tensor && (expected.ContainsKey(k) || k.StartsWith("net_t.", StringComparison.Ordinal))))
            {
                dict = candidate;
                break;
            }
        }
        dict ??= top;
        var entries = dict.Keys.OfType<string>().Where(k => dict[k] is Tensor).ToList();
        bool whole = entries.Any(k => k.StartsWith("net_t.", StringComparison.Ordinal));
        var found = new Dictionary<string, Tensor>();
        var ignored = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var k in entries)
        {
            var key = whole ? (k.StartsWith("net_t.", StringComparison.Ordinal) ? k["net_t.".Length..] : null) : k;
            if (key is not null && expected.ContainsKey(key)) found[key] = (Tensor)dict[k]!;
            else ignored.Add(whole && key is null ? k.Split('.')[0] : (whole ? "net_t." : "") + (key ?? k).Split('.')[0]);
        }
        return (found, ignored.ToList());
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Shared validation

    private static readonly Dictionary<Backbone, IReadOnlyDictionary<string, long[]>> ShapeCache = new();

    /// <summary>The encoder's state_dict shapes for <paramref name="backbone"/>, in order.</summary>
    internal static IReadOnlyDictionary<string, long[]> ExpectedShapes(Backbone backbone)
    {
        lock (ShapeCache)
        {
            if (ShapeCache.TryGetValue(backbone, out var cached)) return cached;
            using var scope = NewDisposeScope();
            using var enc = new ResNetEncoder(backbone);
            var shapes = new Dictionary<string, long[]>();
            foreach (var (k, t) in enc.state_dict()) shapes[k] = t.shape;
            return ShapeCache[backbone] = shapes;
        }
    }

    /// <summary>
    /// Checks every expected key is present with its shape (num_batches_tracked may be absent: old checkpoints lack
    /// it) and returns float32 (int64 for num_batches_tracked) CPU copies. Throws one line naming the source.
    /// </summary>
    internal static Dictionary<string, Tensor> Validate(IReadOnlyDictionary<string, Tensor> found,
        IReadOnlyDictionary<string, long[]> expected, Backbone backbone, string source)
    {
        var missing = new List<string>();
        var misShaped = new List<string>();
        foreach (var (key, shape) in expected)
        {
            if (!found.TryGetValue(key, out var t))
            {
                if (!key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) missing.Add(key);
                continue;
            }
            bool ok = shape.Length == 0 ? t.numel() == 1 : t.shape.SequenceEqual(shape);
            if (!ok) misShaped.Add($"{key} [{string.Join(",", t.shape)}] vs [{string.Join(",", shape)}]");
        }
        if (missing.Count > 0 || misShaped.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"{missing.Count} missing ({Few(missing)})");
            if (misShaped.Count > 0) parts.Add($"{misShaped.Count} with another shape ({Few(misShaped)})");
            throw new MambaADException(
                $"{source} does not hold {EncoderDescriptor.Of(backbone).Name} encoder weights: {string.Join("; ", parts)}; expected timm/torchvision " +
                "names (conv1.weight, layer1.0.conv1.weight, …), bare, under 'state_dict'/'net', or prefixed 'net_t.'");
        }
        var result = new Dictionary<string, Tensor>();
        foreach (var key in expected.Keys)
        {
            if (!found.TryGetValue(key, out var t)) continue;
            var dtype = key.EndsWith(".num_batches_tracked", StringComparison.Ordinal) ? int64 : float32;
            result[key] = t.detach().to(dtype, CPU).clone();
        }
        return result;
    }

    private static string Few(List<string> items) =>
        string.Join(", ", items.Take(4)) + (items.Count > 4 ? $", … {items.Count - 4} more" : "");



}
