using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Model;
using MambaAD.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Training;

/// <summary>
/// The trainer's encoder-feature cache: a step from kept features is the step from the images, bit for bit (loss and
/// every gradient, in another batch order), and the cache is all or nothing within its budget. A run that keeps the
/// features against one that does not: <see cref="EndToEndTests"/>.
/// </summary>
[Collection("Torch")]
public sealed class EncoderFeatureCacheTests
{
    private static Sample Fake(int i) => new($"/nonexistent/{i:000}.png", "c", "good", null, false);

    [Fact]
    public void A_step_from_kept_features_is_the_step_from_the_images()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        model.train();   // drop-path active: both steps draw the same mask from the same seed
        var samples = Enumerable.Range(0, 4).Select(Fake).ToList();
        var x = randn(4, 3, 64, 64);
        using var cache = EncoderFeatureCache.For(4, model.Encoder.Descriptor, 64, 1.0, out var decision)!;
        Assert.Contains("kept in memory", decision);
        cache.Add(samples, model.Encoder.call(x));
        Assert.Equal(4, cache.Count);

        var order = new long[] { 2, 0, 3, 1 };
        var (lossFresh, gradsFresh) = Step(model, () => model.Loss(x.index_select(0, tensor(order))));
        var shuffled = order.Select(i => samples[(int)i]).ToList();
        Assert.True(cache.HoldsAll(shuffled));
        var (lossKept, gradsKept) = Step(model, () => model.Loss(cache.Get(shuffled, CPU)));

        Assert.Equal(lossFresh, lossKept);
        Assert.Equal(gradsFresh.Count, gradsKept.Count);
        for (int i = 0; i < gradsFresh.Count; i++)
            Assert.True(gradsFresh[i].allclose(gradsKept[i], 0, 0), $"gradient {i} differs between the kept and the fresh features");
    }

    private static (float Loss, List<Tensor> Grads) Step(MambaADModel model, Func<Tensor> loss)
    {
        model.zero_grad();
        manual_seed(7);
        var l = loss();
        l.backward();
        return (l.item<float>(), model.parameters().Where(p => p.grad is not null).Select(p => p.grad!.clone()).ToList());
    }

    [Fact]
    public void The_cache_is_used_only_when_every_image_fits()
    {
        var encoder = EncoderDescriptor.Of(Backbone.ResNet18);
        long perImage = EncoderFeatureCache.BytesPerImage(encoder, 256);
        Assert.Equal(4L * (64 * 64 * 64 + 128 * 32 * 32 + 256 * 16 * 16), perImage);   // 1.75 MB
        double gb = 1L << 30;
        Assert.NotNull(EncoderFeatureCache.For(100, encoder, 256, 100 * perImage / gb, out _));
        Assert.Null(EncoderFeatureCache.For(101, encoder, 256, 100 * perImage / gb, out var refused));
        Assert.Contains("--feature-cache", refused);
        Assert.Null(EncoderFeatureCache.For(1, encoder, 256, 0, out var off));
        Assert.Null(off);
        Assert.Throws<MambaADException>(() => new TrainingOptions { FeatureCacheGb = -1 }.Validate());

        using var cache = EncoderFeatureCache.For(2, encoder, 256, 1, out _)!;
        Assert.False(cache.HoldsAll([Fake(0)]));
        Assert.Throws<InvalidOperationException>(() => cache.Get([Fake(0)], CPU));
    }
}
