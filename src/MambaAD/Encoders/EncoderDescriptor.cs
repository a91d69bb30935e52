namespace MambaAD.Encoders;

/// <summary>
/// What the rest of the model needs to know of an encoder (spec §2): its blocks per layer, and the channels and
/// strides of the features F1, F2, F3 it hands to the bottleneck. A new backbone is one more entry here (and, if its
/// blocks differ, a block type in <see cref="ResNetEncoder"/>).
/// </summary>
/// <param name="Backbone">Which encoder.</param>
/// <param name="Name">Its name on the command line and in model.json.</param>
/// <param name="BlocksPerLayer">BasicBlocks in layer1, layer2, layer3.</param>
/// <param name="Channels">Channels of F1, F2, F3.</param>
/// <param name="Strides">Downsampling of F1, F2, F3 relative to the input.</param>
internal sealed record EncoderDescriptor(Backbone Backbone, string Name, int[] BlocksPerLayer, int[] Channels, int[] Strides)
{
    /// <summary>Every supported encoder.</summary>
    public static IReadOnlyList<EncoderDescriptor> All { get; } =
    [
        new(Backbone.ResNet18, "resnet18", [2, 2, 2], [64, 128, 256], [4, 8, 16]),
        new(Backbone.ResNet34, "resnet34", [3, 4, 6], [64, 128, 256], [4, 8, 16]),
    ];

    /// <summary>The descriptor of <paramref name="backbone"/>.</summary>
    public static EncoderDescriptor Of(Backbone backbone) => All.First(d => d.Backbone == backbone);

    /// <summary>The backbone called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static Backbone? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))?.Backbone;

    /// <summary>The names, for messages: "resnet18, resnet34".</summary>
    public static string Names => string.Join(", ", All.Select(d => d.Name));
}
