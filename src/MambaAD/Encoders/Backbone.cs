using System.Text.Json.Serialization;

namespace MambaAD.Encoders;

/// <summary>The frozen encoder's architecture (spec §2): the paper's ResNet34, or ResNet18 (the embedded weights).</summary>
public enum Backbone
{
    /// <summary>ResNet18 layer1–3 (2, 2, 2 BasicBlocks).</summary>
    [JsonStringEnumMemberName("resnet18")] ResNet18,

    /// <summary>ResNet34 layer1–3 (3, 4, 6 BasicBlocks): the paper's encoder.</summary>
    [JsonStringEnumMemberName("resnet34")] ResNet34,
}
