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
/// every gradient, in another batch order, from memory and from the file), the cache is all or nothing within its
/// budget, its file has no name while it is used, and a disk that fails a write (a real ENOSPC, from /dev/full) stops
/// the cache and nothing else. A run that keeps the features against one that does not: <see cref="EndToEndTests"/>.
/// </summary>
[Collection("Torch")]
public sealed class EncoderFeatureCacheTests : IDisposable
{
    private readonly string _dir = DiskTemp.Create("mambaad-feature-cache-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Sample Fake(int i) => new($"/nonexistent/{i:000}.png", "c", "good", null, false);

    /// <param name="memoryGb">1 GB holds these features in memory; a tiny budget sends them to the file.</param>
    [Theory]
    [InlineData(1.0, "kept in memory")]
    [InlineData(1e-9, "kept in a temporary file")]
    public void A_step_from_kept_features_is_the_step_from_the_images(double memoryGb, string decisionSays)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        model.train();   // drop-path active: both steps draw the same mask from the same seed
        var samples = Enumerable.Range(0, 4).Select(Fake).ToList();
        var x = randn(4, 3, 64, 64);
        using var cache = EncoderFeatureCache.For(4, model.Encoder.Descriptor, 64, memoryGb, _dir, out var decision)!;
        Assert.Contains(decisionSays, decision);
        Assert.Null(cache.Add(samples.Take(3).ToList(), model.Encoder.call(x.narrow(0, 0, 3))));   // two batches, two sizes
        Assert.Null(cache.Add(samples, model.Encoder.call(x)));
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
        using (var fits = EncoderFeatureCache.For(100, encoder, 256, 100 * perImage / gb, _dir, out _))
            Assert.False(fits!.OnDisk);
        Assert.Null(EncoderFeatureCache.For(101, encoder, 256, 100 * perImage / gb, null, out var refused));
        Assert.Contains("--feature-cache", refused);
        using (var onDisk = EncoderFeatureCache.For(101, encoder, 256, 100 * perImage / gb, _dir, out var spilled))
        {
            Assert.True(onDisk!.OnDisk, spilled);
            if (!OperatingSystem.IsWindows()) Assert.Empty(Directory.GetFileSystemEntries(_dir));   // unlinked once opened
        }
        // 28 TB of features: more than this disk has free, so not on disk either, and the line says so.
        Assert.Null(EncoderFeatureCache.For(1_000_000, encoder, 1024, 100 * perImage / gb, _dir, out var noRoom));
        Assert.Contains("free", noRoom);
        if (Directory.Exists("/dev/shm") && new DriveInfo("/dev/shm").DriveFormat == "tmpfs")
        {
            // A run folder in memory would hold the features in memory after all, past the budget.
            Assert.Null(EncoderFeatureCache.For(101, encoder, 256, 100 * perImage / gb, "/dev/shm", out var inMemory));
            Assert.Contains("tmpfs", inMemory);
        }
        Assert.Null(EncoderFeatureCache.For(1, encoder, 256, 0, _dir, out var off));
        Assert.Null(off);
        Assert.Throws<MambaADException>(() => new TrainingOptions { FeatureCacheGb = -1 }.Validate());

        using var cache = EncoderFeatureCache.For(2, encoder, 256, 1, null, out _)!;
        Assert.False(cache.HoldsAll([Fake(0)]));
        Assert.Throws<InvalidOperationException>(() => cache.Get([Fake(0)], CPU));
    }

    [Fact]
    public void The_memory_store_gives_back_each_slot_and_refuses_bytes_outside_it()
    {
        using var store = new FeatureMemory(3, 40);
        for (int slot = 0; slot < 3; slot++)
            store.Write(slot, 8, Enumerable.Range(0, 32).Select(i => (byte)(slot * 32 + i)).ToArray());
        var back = new byte[32];
        for (int slot = 2; slot >= 0; slot--)
        {
            store.Read(slot, 8, back);
            Assert.Equal(Enumerable.Range(0, 32).Select(i => (byte)(slot * 32 + i)), back);
        }
        Assert.Throws<InvalidOperationException>(() => store.Write(3, 0, new byte[1]));     // no fourth slot
        Assert.Throws<InvalidOperationException>(() => store.Write(0, 9, new byte[32]));    // past the slot's end
        Assert.Throws<InvalidOperationException>(() => store.Read(-1, 0, new byte[1]));
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.Read(0, 0, back));
    }

    [Fact]
    public void A_disk_that_fails_a_write_stops_the_cache_and_nothing_else()
    {
        if (!File.Exists("/dev/full")) return;   // Linux's device whose every write fails with ENOSPC
        using var scope = NewDisposeScope();
        // /dev/full takes no block reservation, as a file system without fallocate, and every write fails with ENOSPC.
        string link = Path.Combine(_dir, "full");
        File.CreateSymbolicLink(link, "/dev/full");
        var encoder = EncoderDescriptor.Of(Backbone.ResNet18);
        using var cache = EncoderFeatureCache.OnFile(FeatureFile.Open(link, 4, EncoderFeatureCache.BytesPerImage(encoder, 64)));
        var features = new[] { randn(2, 64, 16, 16), randn(2, 128, 8, 8), randn(2, 256, 4, 4) };
        string? stopped = cache.Add([Fake(0), Fake(1)], features);
        Assert.NotNull(stopped);
        Assert.Contains("could not take more", stopped);
        Assert.Equal(0, cache.Count);
        Assert.False(cache.HoldsAll([Fake(0)]));   // so the loader decodes it and the encoder runs: the run goes on
        Assert.Null(cache.Add([Fake(2), Fake(3)], features));   // said once
        Assert.Equal(0, cache.Count);
    }
}
