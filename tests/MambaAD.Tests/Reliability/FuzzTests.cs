using System.Buffers.Binary;
using MambaAD.Tests.Data;
using SkiaSharp;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// 360 mutants of valid PNG (RGB, grey, RGBA, 16-bit grey), JPEG and WebP files — bit flips, overwritten bytes,
/// truncations, headers that declare other sizes (with valid checksums), corrupted chunk lengths and JPEG markers,
/// spliced files — scored by one real <c>mambaad test --skip-bad</c> process and one <c>mambaad predict --skip-bad</c>:
/// each ends normally, every mutant is either decoded or listed as one warning line (predict: a row with the reason),
/// nothing else reaches stderr, and memory stays bounded.
/// </summary>
[Collection("Torch")]
public sealed class FuzzTests : IDisposable
{
    private const int Mutants = 360;
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-fuzz").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static (string Ext, byte[] Bytes)[] Seeds()
    {
        var grey = new byte[(48 + 1) * 40];
        var rng = new Random(5);
        rng.NextBytes(grey);
        for (int y = 0; y < 40; y++) grey[y * 49] = (byte)(y % 5); // every PNG filter type
        return
        [
            (".png", CraftedFiles.Encoded(48, 40, SKEncodedImageFormat.Png, 1)),
            (".png", CraftedFiles.Png(48, 40, 8, 0, grey)),
            (".png", CraftedFiles.Grey16Png(40, 32, 2)),
            (".jpg", CraftedFiles.Encoded(48, 40, SKEncodedImageFormat.Jpeg, 3)),
            (".jpg", CraftedFiles.Encoded(64, 16, SKEncodedImageFormat.Jpeg, 4)),
            (".webp", CraftedFiles.Encoded(40, 40, SKEncodedImageFormat.Webp, 5)),
        ];
    }

    /// <summary>One mutant of <paramref name="seed"/>, by strategy <paramref name="kind"/>.</summary>
    private static byte[] Mutate(byte[] seed, int kind, Random rng, byte[] other)
    {
        var b = (byte[])seed.Clone();
        bool png = b.Length > 24 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G';
        switch (kind)
        {
            case 0: // flip 1–8 bits
                for (int n = rng.Next(1, 9); n > 0; n--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1: // overwrite bytes with boundary values
                for (int n = rng.Next(1, 5); n > 0; n--) b[rng.Next(b.Length)] = new byte[] { 0, 0xFF, 0x7F, 0x80, 1 }[rng.Next(5)];
                return b;
            case 2: // truncate
                return b[..rng.Next(1, b.Length)];
            case 3: // declare another size (PNG: IHDR with a valid CRC; JPEG: SOF; WebP: its header bits)
                if (png)
                {
                    uint[] sides = [0, 1, 7, 255, 4096, 8192, 30000, 65535, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF];
                    BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), sides[rng.Next(sides.Length)]);
                    BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), sides[rng.Next(sides.Length)]);
                    if (rng.Next(3) == 0) b[24] = new byte[] { 1, 2, 4, 8, 16, 3, 0 }[rng.Next(7)];   // bit depth
                    if (rng.Next(3) == 0) b[25] = new byte[] { 0, 2, 3, 4, 6, 5 }[rng.Next(6)];       // colour type
                    CraftedFiles.FixPngCrcs(b);
                    return b;
                }
                for (int i = 2; i + 9 < b.Length; i++)
                    if (b[i] == 0xFF && b[i + 1] is 0xC0 or 0xC2)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 5), (ushort)rng.Next(65536));
                        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 7), (ushort)rng.Next(65536));
                        return b;
                    }
                for (int i = 20; i < Math.Min(b.Length, 40); i++) b[i] = (byte)rng.Next(256);
                return b;
            case 4: // corrupt a length field: a PNG chunk's, a JPEG marker segment's
                if (png)
                {
                    int pos = 8;
                    for (int skip = rng.Next(4); skip > 0 && pos + 12 < b.Length; skip--)
                        pos += 12 + (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos)), (uint)b.Length);
                    if (pos + 4 <= b.Length)
                        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(pos), new uint[] { 0, 1, 0x7FFFFFFF, 0xFFFFFFFF, (uint)rng.Next(100000) }[rng.Next(5)]);
                    return b;
                }
                var markers = Enumerable.Range(2, Math.Max(0, b.Length - 4)).Where(i => b[i] == 0xFF && b[i + 1] is >= 0xC0 and <= 0xFE and not 0xD8 and not 0xD9).ToList();
                if (markers.Count > 0)
                    BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(markers[rng.Next(markers.Count)] + 2), (ushort)new[] { 0, 1, 2, 0xFFFF, rng.Next(65536) }[rng.Next(5)]);
                return b;
            case 5: // delete or duplicate a range
            {
                int at = rng.Next(b.Length), len = rng.Next(1, Math.Max(2, b.Length / 8));
                len = Math.Min(len, b.Length - at);
                return rng.Next(2) == 0 ? [.. b[..at], .. b[(at + len)..]] : [.. b[..(at + len)], .. b[at..]];
            }
            default: // splice the head of one file onto the tail of another
                return [.. b[..rng.Next(1, b.Length)], .. other[rng.Next(other.Length)..]];
        }
    }

    /// <summary>Writes the <see cref="Mutants"/> mutants into <paramref name="folder"/>; returns their paths.</summary>
    private static List<string> WriteCorpus(string folder)
    {
        var seeds = Seeds();
        var rng = new Random(20251201);
        var names = new List<string>();
        Directory.CreateDirectory(folder);
        for (int i = 0; i < Mutants; i++)
        {
            var (ext, seed) = seeds[i % seeds.Length];
            var mutant = Mutate(seed, i / seeds.Length % 7, rng, seeds[rng.Next(seeds.Length)].Bytes);
            var path = Path.Combine(folder, $"m{i:000}{ext}");
            File.WriteAllBytes(path, mutant);
            names.Add(path);
        }
        return names;
    }

    [Fact]
    public void Mutated_images_through_test_skip_bad_never_crash_and_stay_in_bounded_memory()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var names = WriteCorpus(d.P("bottle", "test", "good"));
        var ckpt = HostileInputTests.TinyCheckpoint(Path.Combine(_dir, "ckpt"));

        var (code, p) = CliProcess.Run(["test", "--checkpoint", ckpt, "--data", d.Root, "--skip-bad", "--batch", "8"]);
        using (p)
        {
            Assert.True(code == 0, $"exit {code} (a crash is 134/139); {p.Transcript()}");
            Assert.All(p.Stderr, l => Assert.StartsWith("warning: ", l));
            var refused = names.Count(n => p.Stderr.Any(l => l.StartsWith($"warning: {n}: ")));
            var tested = int.Parse(p.Stdout.First(l => l.EndsWith(" test images")).Split(' ')[^3]);
            Console.WriteLine($"fuzz (test): {Mutants} mutants ({Seeds().Length} seeds × 7 strategies), {refused} refused with a warning, " +
                $"{Mutants - refused} decoded and scored; {tested} test images in all; peak RSS {p.PeakRssMb:F0} MB");
            Assert.InRange(refused, 1, Mutants - 1);   // both outcomes occur: the corpus exercises the decoders and the refusals
            Assert.True(p.PeakRssMb < 1500, $"peak RSS {p.PeakRssMb:F0} MB");
            Assert.Contains(p.Stdout, l => l.Contains("I-AUROC"));
        }
    }

    [Fact]
    public void Mutated_images_through_predict_skip_bad_give_one_row_each_and_stay_in_bounded_memory()
    {
        var names = WriteCorpus(Path.Combine(_dir, "images"));
        var ckpt = HostileInputTests.TinyCheckpoint(Path.Combine(_dir, "ckpt"));
        var outDir = Path.Combine(_dir, "out");

        var (code, p) = CliProcess.Run(["predict", "--checkpoint", ckpt, "--skip-bad", "--batch", "8", "--out", outDir, Path.Combine(_dir, "images")]);
        using (p)
        {
            Assert.True(code == 0, $"exit {code} (a crash is 134/139); {p.Transcript()}");
            Assert.All(p.Stderr, l => Assert.StartsWith("warning: skipped ", l));
            // One row per mutant: a score, or an empty score and the reason.
            var rows = Inference.PredictTests.Rows(outDir);
            Assert.Equal(names.Order(StringComparer.Ordinal), rows.Select(r => r[0]));
            int scored = rows.Count(r => r[1] != "" && r[6] == ""), refused = rows.Count(r => r[1] == "" && r[6] != "");
            Assert.Equal(Mutants, scored + refused);
            Assert.Equal(refused, p.Stderr.Count);
            Assert.All(rows.Where(r => r[1] != ""), r => Assert.True(File.Exists(Path.Combine(outDir, r[3])), r[3]));
            Console.WriteLine($"fuzz (predict): {Mutants} mutants, {refused} rows with an error, {scored} scored; peak RSS {p.PeakRssMb:F0} MB");
            Assert.InRange(refused, 1, Mutants - 1);
            // Two mutants decode to 50 and 25 megapixels; the peak is the larger one while decoded (0.35 GB) over the
            // process's 0.3 GB: 0.65 GB. Dead originals left to the GC's timing made it 1.2 GB, or 1.6 (1 run in 5).
            Assert.True(p.PeakRssMb < 1000, $"peak RSS {p.PeakRssMb:F0} MB");
        }
    }
}
