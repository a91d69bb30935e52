using MambaAD.Model;

namespace MambaAD.Tests.Model;

/// <summary>The vectorised Gaussian (Model/GaussianFilter.Apply) against its per-line reference: the same bits.</summary>
public class GaussianFilterTests
{
    [Theory]
    [InlineData(1, 1, 4.0)]
    [InlineData(1, 7, 4.0)]     // narrower than a vector and than the radius: reflection wraps
    [InlineData(5, 3, 4.0)]
    [InlineData(17, 33, 4.0)]   // a vector tail in every row
    [InlineData(64, 80, 4.0)]
    [InlineData(256, 256, 4.0)] // the anomaly map's size
    [InlineData(40, 21, 1.5)]
    public void Apply_equals_the_reference_bit_for_bit(int height, int width, double sigma)
    {
        var rng = new Random(height * 1000 + width);
        var image = new double[height * width];
        for (int i = 0; i < image.Length; i++) image[i] = rng.NextDouble() * Math.Pow(10, rng.Next(-6, 2));
        var expected = (double[])image.Clone();
        GaussianFilter.Reference(expected, height, width, sigma);
        GaussianFilter.Apply(image, height, width, sigma);
        for (int i = 0; i < image.Length; i++)
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(image[i]),
                $"pixel {i}: {image[i]:R} against the reference's {expected[i]:R}");
    }

    [Fact]
    public void A_constant_image_stays_constant()
    {
        var image = Enumerable.Repeat(0.25, 30 * 50).ToArray();
        GaussianFilter.Apply(image, 30, 50);
        Assert.All(image, v => Assert.Equal(0.25, v, 12));
    }
}
