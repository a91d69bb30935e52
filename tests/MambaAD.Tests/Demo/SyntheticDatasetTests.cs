using MambaAD.Data;
using MambaAD.Demo;
using MambaAD.Imaging;

namespace MambaAD.Tests.Demo;

public class SyntheticDatasetTests
{
    private static readonly SyntheticDatasetOptions Small = new(TrainPerClass: 3, TestGoodPerClass: 2, TestDefectPerType: 2);

    /// <summary>A temporary folder, deleted on dispose.</summary>
    private sealed class Temp : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("mambaad-demo").FullName;
        public string P(params string[] parts) => Path.Combine([Dir, .. parts]);
        public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
    }

    [Fact]
    public void Layout_reads_back_as_mvtec_style_with_expected_classes_counts_and_paired_masks()
    {
        using var t = new Temp();
        var info = SyntheticDataset.Generate(t.P("data"), Small);

        Assert.False(info.Reused);
        Assert.True(info.ClassNames.Count >= 3);
        Assert.Equal(SyntheticDataset.ClassNames, info.ClassNames);
        Assert.Contains(info.ClassNames, c => c is "carpet" or "tile");      // textures
        Assert.Contains(info.ClassNames, c => c is "washer" or "capsule");   // objects
        Assert.Equal(["crack", "hole", "scratch", "stain"], info.DefectTypes.Values.SelectMany(d => d).Distinct().Order());
        Assert.All(info.DefectTypes.Values, d => Assert.True(d.Count >= 2));

        var ds = Dataset.Open(info.Root);
        Assert.Equal("folder", ds.Layout);
        Assert.Equal(info.ClassNames.Order(), ds.ClassNames.Order());
        Assert.Empty(ds.Warnings);
        Assert.Equal(info.TrainCount, ds.Train.Count);
        Assert.Equal(info.ClassNames.Count * 3, ds.Train.Count);
        Assert.Equal(info.TestCount, ds.Test.Count);
        foreach (var cls in info.ClassNames)
        {
            var test = ds.Test.Where(s => s.ClassName == cls).ToList();
            Assert.Equal(2, test.Count(s => s.DefectType == "good"));
            Assert.Equal(info.DefectTypes[cls].Order(), test.Where(s => s.DefectType != "good").Select(s => s.DefectType).Distinct().Order());
            foreach (var d in info.DefectTypes[cls]) Assert.Equal(2, test.Count(s => s.DefectType == d));
        }
        foreach (var s in ds.Test)
        {
            if (s.DefectType == "good")
            {
                Assert.Null(s.MaskPath);
                Assert.False(s.IsFolderAnomalous);
                continue;
            }
            Assert.True(s.IsFolderAnomalous);
            Assert.NotNull(s.MaskPath);
            Assert.Equal(Path.Combine(info.Root, s.ClassName, "ground_truth", s.DefectType, s.Stem + "_mask.png"), s.MaskPath);
            var m = Preprocess.Mask(s.MaskPath!, 256);
            Assert.True(m.Sum(b => b) >= 100, $"{s.MaskPath}: mask nearly empty after preprocessing");
        }
    }

    [Fact]
    public void Same_seed_gives_identical_bytes_and_another_seed_other_images()
    {
        using var t = new Temp();
        var a = SyntheticDataset.Generate(t.P("a"), Small);
        var b = SyntheticDataset.Generate(t.P("b"), Small);
        var c = SyntheticDataset.Generate(t.P("c"), Small with { Seed = 7 });
        var files = Directory.EnumerateFiles(a.Root, "*.png", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a.Root, f)).Order().ToList();
        Assert.Equal(files, Directory.EnumerateFiles(b.Root, "*.png", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b.Root, f)).Order());
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(a.Root, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b.Root, f))), $"{f} differs between runs");
        foreach (var f in files)
            Assert.False(File.ReadAllBytes(Path.Combine(a.Root, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(c.Root, f))), $"{f} is the same for seeds 42 and 7");
    }

    [Theory]
    [InlineData(160)]
    [InlineData(64)]
    public void Images_are_8bit_rgb_png_and_masks_8bit_grey_0_255_of_the_requested_size(int size)
    {
        using var t = new Temp();
        var info = SyntheticDataset.Generate(t.P("data"), Small with { ImageSize = size, Classes = ["tile", "washer"] });
        Assert.Equal(["tile", "washer"], info.ClassNames);
        Assert.Equal(["tile", "washer"], Directory.GetDirectories(info.Root).Select(Path.GetFileName).Order());
        foreach (var f in Directory.EnumerateFiles(info.Root, "*.png", SearchOption.AllDirectories))
        {
            bool mask = f.EndsWith("_mask.png", StringComparison.Ordinal);
            var (w, h, depth, colourType) = Ihdr(f);
            Assert.Equal((size, size, 8), (w, h, depth));
            Assert.Equal(mask ? 0 : 2, colourType); // 0 = grey, 2 = RGB (no alpha)
            if (mask)
            {
                var (_, _, grey) = ImageDecoder.DecodeGrey(f);
                Assert.All(grey, v => Assert.True(v is 0 or 255));
                Assert.True(Preprocess.Mask(f, 256).Sum(b => b) > 0);
            }
        }
    }

    public static TheoryData<string, string> ClassDefects()
    {
        var d = new TheoryData<string, string>();
        foreach (var c in SyntheticDataset.ClassNames)
            foreach (var t in SyntheticDataset.DefectTypes(c)) d.Add(c, t);
        return d;
    }

    /// <summary>
    /// The rule verified: comparing a defect image with the same image rendered without its defect (same seed, same
    /// sensor noise), (1) every pixel that differs in any channel is inside the mask — exactly, no tolerance; (2) at
    /// least 97 % of the mask pixels differ (the mask does not extend beyond the change: the defect has no antialias
    /// fringe, each mask pixel is blended with opacity ≥ 0.45 towards a contrasting colour, only 8-bit clipping can
    /// hide a change); (3) the mean absolute change inside the mask is large (visible); (4) the mask covers 0.2–8 %
    /// of the image; (5) what Generate wrote is exactly this rendering.
    /// </summary>
    [Theory]
    [MemberData(nameof(ClassDefects))]
    public void Masks_are_exactly_the_changed_pixels_and_defects_are_visible(string cls, string defect)
    {
        const int size = 256;
        for (int index = 0; index < 6; index++)
        {
            var r = SyntheticDataset.Render(cls, "test", defect, index, 42, size, keepClean: true);
            Assert.NotNull(r.Mask);
            Assert.NotNull(r.CleanRgb);
            int inMask = 0, changedInMask = 0; double sumDiff = 0;
            for (int p = 0; p < size * size; p++)
            {
                int diff = 0;
                for (int ch = 0; ch < 3; ch++) diff += Math.Abs(r.Rgb[3 * p + ch] - r.CleanRgb![3 * p + ch]);
                bool masked = r.Mask![p] == 255;
                Assert.True(masked || diff == 0, $"{cls}/{defect}/{index}: pixel ({p % size}, {p / size}) changed outside the mask");
                if (!masked) { Assert.Equal(0, r.Mask[p]); continue; }
                inMask++;
                if (diff > 0) changedInMask++;
                sumDiff += diff / 3.0;
            }
            double fraction = inMask / (double)(size * size);
            Assert.InRange(fraction, 0.002, 0.08);
            Assert.True(changedInMask >= 0.97 * inMask, $"{cls}/{defect}/{index}: only {changedInMask}/{inMask} mask pixels changed");
            Assert.True(sumDiff / inMask >= 35, $"{cls}/{defect}/{index}: mean |Δ| inside the mask is only {sumDiff / inMask:F1}");
        }
    }

    [Fact]
    public void Generated_files_are_exactly_the_internal_rendering()
    {
        using var t = new Temp();
        var info = SyntheticDataset.Generate(t.P("data"), Small with { Classes = ["capsule"] });
        var r = SyntheticDataset.Render("capsule", "test", "crack", 1, 42, 256, keepClean: false);
        Assert.Equal(r.Rgb, ImageDecoder.DecodeRgb(Path.Combine(info.Root, "capsule", "test", "crack", "001.png")).Hwc);
        Assert.Equal(r.Mask, ImageDecoder.DecodeGrey(Path.Combine(info.Root, "capsule", "ground_truth", "crack", "001_mask.png")).Grey);
        var g = SyntheticDataset.Render("capsule", "train", "good", 2, 42, 256, keepClean: false);
        Assert.Null(g.Mask);
        Assert.Equal(g.Rgb, ImageDecoder.DecodeRgb(Path.Combine(info.Root, "capsule", "train", "good", "002.png")).Hwc);
    }

    [Fact]
    public void Normal_images_vary_but_stay_alike()
    {
        foreach (var cls in SyntheticDataset.ClassNames)
        {
            var a = SyntheticDataset.Render(cls, "train", "good", 0, 42, 128, false).Rgb;
            var b = SyntheticDataset.Render(cls, "train", "good", 1, 42, 128, false).Rgb;
            double mad = a.Zip(b, (x, y) => Math.Abs(x - y)).Average();
            Assert.True(mad > 3, $"{cls}: two normal images are almost identical (mean |Δ| {mad:F1})");
            Assert.True(Math.Abs(a.Average(x => x) - b.Average(x => x)) < 40, $"{cls}: normal images differ wildly in brightness");
        }
    }

    [Fact]
    public void Complete_dataset_is_reused_and_incomplete_or_changed_one_is_regenerated()
    {
        using var t = new Temp();
        var root = t.P("data");
        var opts = Small with { Classes = ["carpet", "tile"] };
        Assert.False(SyntheticDataset.Generate(root, opts).Reused);
        var probe = Path.Combine(root, "carpet", "train", "good", "000.png");
        var stamp = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(probe, stamp);

        var again = SyntheticDataset.Generate(root, opts);
        Assert.True(again.Reused);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(probe));
        Assert.Equal(opts.TrainPerClass * 2, again.TrainCount);

        File.Delete(Path.Combine(root, ".complete")); // interrupted run
        Assert.False(SyntheticDataset.Generate(root, opts).Reused);
        Assert.NotEqual(stamp, File.GetLastWriteTimeUtc(probe));

        File.Delete(Path.Combine(root, "tile", "test", "good", "001.png")); // a file lost
        Assert.False(SyntheticDataset.Generate(root, opts).Reused);

        var fewer = SyntheticDataset.Generate(root, opts with { TrainPerClass = 2, Classes = ["tile"] });
        Assert.False(fewer.Reused);
        Assert.False(Directory.Exists(Path.Combine(root, "carpet")));   // no stale class left to be read as data
        Assert.Equal(2, Directory.GetFiles(Path.Combine(root, "tile", "train", "good"), "*.png").Length);
        Assert.Empty(Directory.GetFiles(root, "*.tmp", SearchOption.AllDirectories));
        Assert.Equal(2, Dataset.Open(root).Train.Count);
    }

    [Fact]
    public void User_errors_are_one_line_MambaADExceptions_naming_the_problem()
    {
        using var t = new Temp();
        var foreign = t.P("foreign");
        Directory.CreateDirectory(Path.Combine(foreign, "carpet"));
        File.WriteAllText(Path.Combine(foreign, "carpet", "keep.txt"), "user data");
        var e = Assert.Throws<MambaADException>(() => SyntheticDataset.Generate(foreign, Small));
        Assert.Contains(foreign, e.Message);
        Assert.True(File.Exists(Path.Combine(foreign, "carpet", "keep.txt")));

        e = Assert.Throws<MambaADException>(() => SyntheticDataset.Generate(t.P("x"), Small with { Classes = ["zebra"] }));
        Assert.Contains("zebra", e.Message);
        Assert.Contains("carpet", e.Message);
        Assert.Throws<MambaADException>(() => SyntheticDataset.Generate(t.P("x"), Small with { ImageSize = 8 }));
        Assert.Throws<MambaADException>(() => SyntheticDataset.Generate(t.P("x"), Small with { TrainPerClass = 0 }));
        Assert.All(new[] { e.Message }, m => Assert.DoesNotContain('\n', m));

        var file = t.P("afile");
        File.WriteAllText(file, "x");
        Assert.Throws<MambaADException>(() => SyntheticDataset.Generate(file, Small));
    }

    private static (int W, int H, int Depth, int ColourType) Ihdr(string path)
    {
        var b = File.ReadAllBytes(path);
        Assert.True(b.AsSpan(0, 8).SequenceEqual(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }), $"{path}: not a PNG");
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(b, 12, 4));
        int w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19], h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
        return (w, h, b[24], b[25]);
    }
}
