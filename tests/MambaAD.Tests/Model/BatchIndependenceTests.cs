using MambaAD.Encoders;
using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// An image's features do not depend on the batch it is in: alone and inside a batch of 3, the encoder and decoder
/// features agree to float32 rounding. The sizes are those whose first decoder stage is 2×2 (64²) and 7×7 (224²),
/// 512 channels, where oneDNN's channels-last 1×1 convolution returned wrong values on a VM that hides the CPU's cache
/// sizes (LssModule now runs those convs as a GEMM); 256² is the default.
/// </summary>
public class BatchIndependenceTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(224)]
    [InlineData(256)]
    public void Features_of_an_image_are_the_same_alone_and_in_a_batch(int imageSize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(3);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = imageSize, Depths = [2, 2, 2, 2] });
        model.eval();
        var x = randn(3, 3, imageSize, imageSize);
        var (encBatch, decBatch) = model.forward(x);
        for (int i = 0; i < 3; i++)
        {
            var (enc, dec) = model.forward(x.narrow(0, i, 1));
            foreach (var (alone, inBatch) in enc.Zip(encBatch).Concat(dec.Zip(decBatch)))
            {
                double scale = alone.abs().max().item<float>();
                double diff = (alone - inBatch.narrow(0, i, 1)).abs().max().item<float>();
                Assert.True(diff <= 1e-4 * scale, $"image {i} at {imageSize}²: {string.Join("×", alone.shape)} differs by {diff:E2} (largest value {scale:F2})");
            }
        }
    }
}
