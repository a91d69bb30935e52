using System.Text.Json.Serialization;

namespace MambaAD.Imaging;

/// <summary>The order of an encoder's input channels.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (PyTorch weights).</summary>
    [JsonStringEnumMemberName("RGB")] Rgb,

    /// <summary>Blue, green, red (the embedded CNTK ResNet18).</summary>
    [JsonStringEnumMemberName("BGR")] Bgr,
}
