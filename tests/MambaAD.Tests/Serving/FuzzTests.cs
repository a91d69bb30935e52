using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Http.Headers;
using SkiaSharp;
using Xunit.Abstractions;

namespace MambaAD.Tests.Serving;

/// <summary>
/// Hundreds of mutants of valid PNG, JPEG and WebP files (bit flips, overwritten, inserted, deleted and duplicated
/// bytes, truncations, and header fields set to hostile sizes with their checksums fixed), generated here from a fixed
/// seed, sent to <c>/predict</c> of a real <c>mambaad serve</c> process: no 5xx, no dropped connection, the process
/// alive and ready at the end, and its memory bounded.
/// </summary>
public class FuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int MutantsPerSeed = 70;
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-fuzz").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Mutated_images_get_2xx_or_4xx_and_the_server_stays_up_with_bounded_memory()
    {
        ServerFixture.SaveTinyCheckpoint(Path.Combine(_dir, "ckpt"));
        var (server, url) = await ServeProcess.ServeAsync(Path.Combine(_dir, "ckpt"), "--max-image-side", "2048", "--concurrency", "2");
        using (server)
        {
            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(2) };
            var seeds = new (string Type, byte[] Bytes)[]
            {
                ("image/png", ServerFixture.Picture(96, 72)),
                ("image/jpeg", ServerFixture.Picture(96, 72, SKEncodedImageFormat.Jpeg)),
                ("image/webp", ServerFixture.Picture(80, 64, SKEncodedImageFormat.Webp)),
                ("image/png", GreyPng(40, 30, sixteenBit: false)),
                ("image/png", GreyPng(40, 30, sixteenBit: true)),
            };
            foreach (var (type, bytes) in seeds) Assert.Equal(200, await Send(http, type, bytes));
            var (startRss, _) = server.MemoryMb();

            var rng = new Random(20240611);
            var mutants = seeds.SelectMany(s => Enumerable.Range(0, MutantsPerSeed).Select(_ => (s.Type, Bytes: Mutate(s.Bytes, rng)))).ToList();
            var statuses = new int[mutants.Count];
            int next = -1;
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < mutants.Count)
                    statuses[i] = await Send(http, mutants[i].Type, mutants[i].Bytes);
            })));

            var (endRss, peakRss) = server.MemoryMb();
            var counts = statuses.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{(g.Key == 0 ? "dropped" : g.Key)}×{g.Count()}");
            output.WriteLine($"{mutants.Count} mutants: {string.Join(", ", counts)}; RSS {startRss:F0} MB before, {endRss:F0} MB after, peak {peakRss:F0} MB");
            Assert.True(mutants.Count >= 300);
            Assert.All(statuses, s => Assert.True(s is >= 200 and < 500, $"status {s} (0: the connection was dropped)"));
            Assert.Contains(200, statuses);
            Assert.Contains(400, statuses);
            Assert.False(server.HasExited, "the server crashed");
            Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
            Assert.True(peakRss - startRss < 512, $"RSS grew from {startRss:F0} MB to a peak of {peakRss:F0} MB");
        }
    }

    private static async Task<int> Send(HttpClient http, string type, byte[] bytes)
    {
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        try
        {
            using var r = await http.PostAsync("/predict", content);
            await r.Content.ReadAsByteArrayAsync();
            return (int)r.StatusCode;
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    /// <summary>One random mutation of <paramref name="seed"/>.</summary>
    private static byte[] Mutate(byte[] seed, Random rng)
    {
        var b = (byte[])seed.Clone();
        int At() => rng.Next(b.Length);
        switch (rng.Next(9))
        {
            case 0: // flip 1–8 bits
                for (int k = rng.Next(1, 9); k > 0; k--) b[At()] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1: // overwrite bytes with boundary values
                for (int k = rng.Next(1, 5); k > 0; k--) b[At()] = (byte)new[] { 0x00, 0xFF, 0x7F, 0x80, rng.Next(256) }[rng.Next(5)];
                return b;
            case 2: // truncate
                return b[..rng.Next(1, b.Length)];
            case 3: // insert random bytes
            {
                int at = At();
                var extra = new byte[rng.Next(1, 65)];
                rng.NextBytes(extra);
                return [.. b[..at], .. extra, .. b[at..]];
            }
            case 4: // delete a range
            {
                int at = At(), n = Math.Min(rng.Next(1, 65), b.Length - at);
                return [.. b[..at], .. b[(at + n)..]];
            }
            case 5: // duplicate a range somewhere else
            {
                int from = At(), n = Math.Min(rng.Next(1, 257), b.Length - from), to = At();
                return [.. b[..to], .. b.AsSpan(from, n), .. b[to..]];
            }
            default: // hostile sizes in the header, checksum fixed so that the decoder believes them
                return HostileHeader(b, rng) ?? Mutate(seed, rng);
        }
    }

    private static readonly uint[] Sizes = [0, 1, 2, 255, 4097, 30000, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF];

    private static byte[]? HostileHeader(byte[] b, Random rng)
    {
        if (b.Length > 33 && b[12] == 'I' && b[13] == 'H' && b[14] == 'D' && b[15] == 'R')
        {
            // PNG IHDR: width, height, bit depth, colour type.
            switch (rng.Next(4))
            {
                case 0: BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), Sizes[rng.Next(Sizes.Length)]); break;
                case 1: BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), Sizes[rng.Next(Sizes.Length)]); break;
                case 2: b[24] = (byte)new[] { 0, 1, 3, 7, 16, 32, 255 }[rng.Next(7)]; break;
                default: b[25] = (byte)new[] { 1, 5, 7, 255 }[rng.Next(4)]; break;
            }
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(29), Reliability.CraftedFiles.Crc32(b.AsSpan(12, 17)));
            return b;
        }
        for (int i = 2; i + 9 < b.Length; i++)
            if (b[i] == 0xFF && b[i + 1] is 0xC0 or 0xC2)
            {
                // JPEG SOF: height and width (16 bits each); no checksum.
                var size = (ushort)Sizes[rng.Next(Sizes.Length)];
                BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + (rng.Next(2) == 0 ? 5 : 7)), size);
                return b;
            }
        return null;
    }

    /// <summary>A grey PNG written by hand (Skia does not write 16-bit grey, the decoder's own path).</summary>
    private static byte[] GreyPng(int width, int height, bool sixteenBit)
    {
        int bytesPerPixel = sixteenBit ? 2 : 1;
        var raw = new MemoryStream();
        for (int y = 0; y < height; y++)
        {
            raw.WriteByte(0); // filter: none
            for (int x = 0; x < width; x++)
            {
                int v = (x * 977 + y * 131) % (sixteenBit ? 65536 : 256);
                if (sixteenBit) raw.WriteByte((byte)(v >> 8));
                raw.WriteByte((byte)v);
            }
        }
        var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(z);
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)(8 * bytesPerPixel);
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", idat.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();

        static void Chunk(Stream s, string type, byte[] data)
        {
            var head = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
            System.Text.Encoding.ASCII.GetBytes(type, head.AsSpan(4));
            s.Write(head);
            s.Write(data);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(crc, Reliability.CraftedFiles.Crc32([.. head.AsSpan(4), .. data]));
            s.Write(crc);
        }
    }
}
