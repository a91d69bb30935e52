using System.IO.Compression;
using MambaAD.IO;

namespace MambaAD.Tests.IO;

public class NpyTests
{
    [Fact]
    public void Float32_round_trip()
    {
        var dir = Directory.CreateTempSubdirectory("npy");
        try
        {
            var values = new float[] { 0f, -1.5f, 3.25f, float.MaxValue, 1e-30f, 7f };
            var path = Path.Combine(dir.FullName, "a.npy");
            NpyArray.FromFloats(values, 2, 3).Write(path);
            var bytes = File.ReadAllBytes(path);
            Assert.Equal(0, (bytes.Length - values.Length * 4) % 64); // header padded to 64
            var back = NpyArray.Read(path);
            Assert.Equal([2, 3], back.Shape);
            Assert.Equal("f4", back.DType);
            Assert.Equal(values, back.ToFloatArray());
            Assert.Empty(Directory.GetFiles(dir.FullName, "*.tmp")); // atomic write leaves no temporary
        }
        finally { dir.Delete(true); }
    }

    // A header written the way NumPy 1.x writes it, for a (2,) float64 array and a (3,) <U2 array.
    [Fact]
    public void Reads_numpy_written_headers_and_npz()
    {
        var dir = Directory.CreateTempSubdirectory("npz");
        try
        {
            var f8 = Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", [.. BitConverter.GetBytes(1.5), .. BitConverter.GetBytes(-2.0)]);
            var u2 = Npy("{'descr': '<U2', 'fortran_order': False, 'shape': (3,), }",
                System.Text.Encoding.UTF32.GetBytes("ab" + "c\0" + "de"));
            var path = Path.Combine(dir.FullName, "x.npz");
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            {
                using (var s = zip.CreateEntry("d.npy").Open()) s.Write(f8);
                using (var s = zip.CreateEntry("names.npy").Open()) s.Write(u2);
            }
            var arrays = NpyArray.ReadNpz(path);
            Assert.Equal([1.5, -2.0], arrays["d"].ToDoubleArray());
            Assert.Equal(["ab", "c", "de"], arrays["names"].ToStringArray());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Rejects_bad_files_naming_them()
    {
        var dir = Directory.CreateTempSubdirectory("npybad");
        try
        {
            var path = Path.Combine(dir.FullName, "bad.npy");
            File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
            var e = Assert.Throws<MambaADException>(() => NpyArray.Read(path));
            Assert.Contains("bad.npy", e.Message);
            File.WriteAllBytes(path, Npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", [0, 0, 0, 0]));
            Assert.Contains("Fortran", Assert.Throws<MambaADException>(() => NpyArray.Read(path)).Message);
            File.WriteAllBytes(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", [0, 0, 0, 0]));
            Assert.Contains("truncated", Assert.Throws<MambaADException>(() => NpyArray.Read(path)).Message);
            Assert.Contains("not found", Assert.Throws<MambaADException>(() => NpyArray.Read(path + "x")).Message);
        }
        finally { dir.Delete(true); }
    }

    private static byte[] Npy(string dict, byte[] data)
    {
        int total = 10 + dict.Length + 1;
        var header = dict + new string(' ', (total + 63) / 64 * 64 - total) + "\n";
        return [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, (byte)(header.Length >> 8), .. System.Text.Encoding.Latin1.GetBytes(header), .. data];
    }
}
