using MambaAD.Data;
using MambaAD.Imaging;

namespace MambaAD.Tests.Data;

public class BatchLoaderTests
{
    [Fact]
    public void Deterministic_shuffle_drop_last_and_exact_preprocessing()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        d.MvtecClass("carpet");
        var ds = Dataset.Open(d.Root);
        var opts = new LoaderOptions(BatchSize: 4, ImageSize: 32, Shuffle: true, Seed: 7, DropLast: true, Workers: 2);
        var loader = new BatchLoader(ds.Train, opts);
        Assert.Equal(1, loader.BatchesPerEpoch); // 6 images, batch 4, drop_last
        var e0 = loader.Epoch(0).ToList();
        Assert.Single(e0);
        Assert.Equal(4, e0[0].Count);
        Assert.Equal(new BatchLoader(ds.Train, opts).Order(3), loader.Order(3));
        Assert.NotEqual(loader.Order(0), loader.Order(1)); // 720 permutations: these two differ for this seed
        var first = e0[0].Samples[0];
        var expect = Preprocess.Image(first.ImagePath, 32, InputNormalization.ImageNet);
        Assert.Equal(expect, e0[0].Images.AsSpan(0, expect.Length).ToArray());
    }

    [Fact]
    public void Test_batches_cover_every_sample_in_order_with_masks()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var ds = Dataset.Open(d.Root);
        var loader = new BatchLoader(ds.Test, new LoaderOptions(BatchSize: 3, ImageSize: 16, LoadMasks: true, Prefetch: 3));
        var batches = loader.Epoch().ToList();
        Assert.Equal([3, 1], batches.Select(b => b.Count));
        Assert.Equal(ds.Test, batches.SelectMany(b => b.Samples));
        var all = batches.SelectMany(b => Enumerable.Range(0, b.Count).Select(i => (b.Samples[i], b.Masks!.AsSpan(i * 256, 256).ToArray()))).ToList();
        foreach (var (s, m) in all)
            Assert.Equal(s.MaskPath is null ? new byte[256] : Preprocess.Mask(s.MaskPath, 16), m);
    }

    [Fact]
    public void Corrupt_image_is_named_or_skipped()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var bad = d.P("bottle", "train", "good", "001.png");
        var bytes = File.ReadAllBytes(bad);
        File.WriteAllBytes(bad, bytes.AsSpan(0, bytes.Length / 2).ToArray()); // truncated
        var ds = Dataset.Open(d.Root);
        var e = Assert.Throws<MambaADException>(() => new BatchLoader(ds.Train, new LoaderOptions(BatchSize: 2, ImageSize: 16)).Epoch().ToList());
        Assert.Contains("001.png", e.Message);
        var loader = new BatchLoader(ds.Train, new LoaderOptions(BatchSize: 2, ImageSize: 16, SkipBad: true));
        Assert.Equal(2, loader.Epoch().Sum(b => b.Count));
        Assert.Contains("001.png", Assert.Single(loader.Warnings));
    }

    [Fact]
    public void Batches_whose_pixels_are_not_needed_are_not_decoded()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var bad = d.P("bottle", "train", "good", "001.png");
        File.WriteAllBytes(bad, [1, 2, 3]); // would fail if it were opened
        var ds = Dataset.Open(d.Root);
        var asked = new List<string>();
        var loader = new BatchLoader(ds.Train, new LoaderOptions(BatchSize: 1, ImageSize: 16,
            PixelsNotNeeded: samples => { lock (asked) asked.AddRange(samples.Select(s => s.Stem)); return samples.All(s => s.ImagePath == bad); }));
        var batches = loader.Epoch().ToList();
        Assert.Equal(ds.Train.Select(s => s.Stem).Order(), asked.Order());
        Assert.Equal(ds.Train, batches.SelectMany(b => b.Samples));
        Assert.All(batches, b => Assert.Equal(b.Samples[0].ImagePath != bad, b.HasPixels));
        Assert.All(batches.Where(b => b.HasPixels), b => Assert.Equal(3 * 16 * 16, b.Images.Length));
        Assert.Empty(loader.Warnings);
    }

    [Fact]
    public void Mask_of_another_size_is_named()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        TinyData.WriteMask(d.P("bottle", "ground_truth", "scratch", "000_mask.png"), 20, 30, 0, 0, 5, 5);
        var ds = Dataset.Open(d.Root);
        var e = Assert.Throws<MambaADException>(() => new BatchLoader(ds.Test, new LoaderOptions(ImageSize: 16, LoadMasks: true)).Epoch().ToList());
        Assert.Contains("000_mask.png: mask is 20×30 but its image", e.Message);
    }
}
