using System.Collections;
using System.IO.Compression;
using MambaAD.Checkpoints;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.IO;
using MambaAD.Model;
using MambaAD.Tests.CommandLine;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// Weights files are read like <c>torch.load(weights_only=True)</c>: crafted pickles (foreign globals, lying sizes,
/// non-string keys, truncation) and crafted safetensors headers each end as one line naming the file, with no
/// allocation of what they declare; the files we write, and the official ones, read back exactly.
/// </summary>
[Collection("Torch")]
public sealed class CheckpointFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-ckpt-files").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Our_checkpoint_reads_back_exactly()
    {
        manual_seed(11);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        var dir = P("ckpt");
        Checkpoint.Save(dir, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test", InputNormalization.ImageNet, ["a"], null, null, "now"));
        var table = PyTorchFile.Read(Path.Combine(dir, Checkpoint.ModelFile), "checkpoint");
        try
        {
            var expected = StateDict.Ordered(model);
            Assert.Equal(expected.Count, table.Count);
            foreach (var (name, t) in expected)
            {
                var read = Assert.IsAssignableFrom<Tensor>(table[name]);
                Assert.True(t.shape.SequenceEqual(read.shape) && t.dtype == read.dtype && t.allclose(read, 0, 0), $"{name} differs");
            }
        }
        finally
        {
            PyTorchFile.DisposeAll(table);
        }
        using var loaded = Checkpoint.Load(dir);
        Assert.Equal(model.Config.ToString(), loaded.Model.Config.ToString());
    }

    [GoldenFact]
    public void Official_files_read_as_PyBridge_reads_them()
    {
        int total = 0;
        foreach (var file in new[] { "modules.pt", "preprocess.pt", "metrics_inputs.pt" })
        {
            var path = SharedData.Golden(file);
            var ours = PyTorchFile.Read(path, "golden file");
            var theirs = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(path);
            try
            {
                int compared = Compare(ours, theirs, file);
                Assert.True(compared > 0, $"{file}: no tensor compared");
                total += compared;
            }
            finally
            {
                PyTorchFile.DisposeAll(ours);
                PyTorchFile.DisposeAll(theirs);
            }
        }
        Assert.True(total > 100, $"only {total} tensors compared");
    }

    private static int Compare(Hashtable ours, Hashtable theirs, string where)
    {
        int n = 0;
        foreach (DictionaryEntry e in theirs)
        {
            var mine = ours[e.Key];
            if (e.Value is Tensor t)
            {
                var m = Assert.IsAssignableFrom<Tensor>(mine);
                // PyBridge reads 0-dim tensors as shape [1]; ours keeps PyTorch's 0-dim shape.
                Assert.True(m.dtype == t.dtype && m.numel() == t.numel() && (m.numel() == 0 || m.reshape(t.shape).eq(t).all().item<bool>()), $"{where}/{e.Key} differs");
                n++;
            }
            else if (e.Value is Hashtable h) n += Compare(Assert.IsType<Hashtable>(mine), h, $"{where}/{e.Key}");
        }
        return n;
    }

    public static TheoryData<string, string> HostilePickles => new()
    {
        { "eval", "refers to the Python object builtins.eval" },
        { "system", "refers to the Python object posix.system" },
        { "inst", "uses the pickle instruction 0x69" },
        { "ext", "uses the pickle instruction 0x82" },
        { "huge-string", "declares 2147483632 bytes where" },
        { "huge-storage", "declares a tensor storage of 274877906944 bytes" },
        { "huge-view", "declares a tensor of 274877906944 elements" },
        { "outside", "declares a tensor of 4 elements (size 2×2) in a storage of 4" },
        { "negative-stride", "not a valid layout" },
        { "missing-storage", "has no data for tensor storage '7'" },
        { "lying-entry", "the zip entry archive/data/0 is truncated or corrupt" },
        { "int-key", "a tensor is stored under the key 5 (Int64), not under a parameter name" },
        { "list-top", "holds no dict of tensors (a state_dict) at its top level" },
        { "truncated-pickle", "ends before its STOP instruction" },
        { "parameter-class", "refers to the Python object torch.nn.parameter.Parameter" },
        { "memo", "refers to memo entry 9, which was never stored" },
    };

    private string Hostile(string kind)
    {
        var path = P(kind + ".pth");
        var storage = new Dictionary<string, byte[]> { ["0"] = new byte[16] };
        byte[] Dict(Func<CraftedFiles.Pickle, CraftedFiles.Pickle> value) => value(new CraftedFiles.Pickle().EmptyDict().Str("w")).SetItem().Stop();
        switch (kind)
        {
            case "eval": CraftedFiles.WriteTorchZip(path, Dict(p => p.Global("builtins", "eval").Mark().Str("print(1)").Tuple().Reduce())); break;
            case "system": CraftedFiles.WriteTorchZip(path, Dict(p => p.Str("posix").Str("system").Op(0x93).Mark().Str("touch /tmp/pwned").Tuple().Reduce())); break;
            case "inst": CraftedFiles.WriteTorchZip(path, Dict(p => p.Mark().Op('i'))); break;
            case "ext": CraftedFiles.WriteTorchZip(path, Dict(p => p.Op(0x82).Op(1))); break;
            case "huge-string": CraftedFiles.WriteTorchZip(path, new CraftedFiles.Pickle().EmptyDict().StrDeclaring(0x7FFFFFF0).Stop()); break;
            case "huge-storage": CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("0", 1L << 36, [1L << 18, 1L << 18], [1L << 18, 1])), storage); break;
            case "huge-view": CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("0", 4, [1L << 18, 1L << 20], [0, 0])), storage); break;
            case "outside": CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("0", 4, [2, 2], [2, 1], offset: 1)), storage); break;
            case "negative-stride": CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("0", 4, [2, 2], [-2, 1])), storage); break;
            case "missing-storage": CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("7", 4, [4], [1])), storage); break;
            case "lying-entry":
                // A deflated storage whose zip headers claim 2 GB: the pickle agrees, the data does not.
                CraftedFiles.WriteTorchZip(path, Dict(p => p.Tensor("0", 0x1FFFFFC0, [0x1FFFFFC0], [1])), new Dictionary<string, byte[]> { ["0"] = new byte[16384] }, CompressionLevel.Optimal);
                CraftedFiles.PatchZipLength(path, "archive/data/0", 0x7FFFFF00);
                break;
            case "int-key": CraftedFiles.WriteTorchZip(path, new CraftedFiles.Pickle().EmptyDict().Int(5).Tensor("0", 4, [4], [1]).SetItem().Stop(), storage); break;
            case "list-top": CraftedFiles.WriteTorchZip(path, new CraftedFiles.Pickle().Op(']').Stop()); break;
            case "truncated-pickle": CraftedFiles.WriteTorchZip(path, new CraftedFiles.Pickle().EmptyDict().Str("w").Stop()[..^1]); break;
            case "parameter-class": CraftedFiles.WriteTorchZip(path, Dict(p => p.Global("torch.nn.parameter", "Parameter").Op(')').Reduce())); break;
            case "memo": CraftedFiles.WriteTorchZip(path, Dict(p => p.Op('h').Op(9))); break;
            default: throw new ArgumentException(kind);
        }
        return path;
    }

    [Theory]
    [MemberData(nameof(HostilePickles))]
    public void A_hostile_pickle_is_one_line_naming_the_file(string kind, string expected)
    {
        var path = Hostile(kind);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<MambaADException>(() => Checkpoint.Load(path).Dispose());
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain("IObjectConstructor", e.Message);
        Assert.False(File.Exists("/tmp/pwned"));
        Assert.True(allocated < 32 << 20, $"{kind}: {allocated >> 20} MB allocated before refusing");
    }

    [Fact]
    public void A_crafted_pickle_through_the_CLI_is_one_error_line()
    {
        var path = Hostile("eval");
        using var data = new Data.TinyData("mvtec");
        data.MvtecClass("bottle");
        var (code, _, err) = CliRunner.Run("test", "--checkpoint", path, "--data", data.Root);
        Assert.Equal(2, code);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: checkpoint {path} refers to the Python object builtins.eval", line);
    }

    public static TheoryData<string, string> HostileSafetensors => new()
    {
        { "header-7fffffff", "declares a header of 2147483647 bytes" },
        { "header-huge", "declares a header of 18446744073709551615 bytes" },
        { "tensor-256gb", "declares a tensor 'w' of 68719476736 elements in 16 bytes" },
        { "outside", "whose data lies outside the file" },
        { "dtype", "of dtype F8_E4M3" },
        { "not-json", "has a header that is not valid JSON" },
        { "overflow", "declares a tensor 'w' of more than 2⁶³ elements" },
    };

    [Theory]
    [MemberData(nameof(HostileSafetensors))]
    public void A_hostile_safetensors_header_is_one_line_naming_the_file(string kind, string expected)
    {
        var path = P(kind + ".safetensors");
        var data = new byte[16];
        File.WriteAllBytes(path, kind switch
        {
            "header-7fffffff" => CraftedFiles.Safetensors("{}", data, 0x7FFFFFFF),
            "header-huge" => CraftedFiles.Safetensors("{}", data, ulong.MaxValue),
            "tensor-256gb" => CraftedFiles.Safetensors("""{"w":{"dtype":"F32","shape":[262144,262144],"data_offsets":[0,16]}}""", data),
            "outside" => CraftedFiles.Safetensors("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1600]}}""", data),
            "dtype" => CraftedFiles.Safetensors("""{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", data),
            "not-json" => CraftedFiles.Safetensors("{\"w\":", data),
            "overflow" => CraftedFiles.Safetensors("""{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}}""", data),
            _ => throw new ArgumentException(kind),
        });
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<MambaADException>(() => EncoderWeights.FromFile(path, Backbone.ResNet18).Dispose());
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 32 << 20);
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Truncated_and_foreign_files_are_one_line()
    {
        var good = P("good.pth");
        CraftedFiles.WriteValidStateDict(good);
        var table = PyTorchFile.Read(good, "weights");
        Assert.Equal([2L, 2L], Assert.IsAssignableFrom<Tensor>(table["w"]).shape);
        PyTorchFile.DisposeAll(table);

        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(P("half.pth"), bytes[..(bytes.Length / 2)]);
        File.WriteAllBytes(P("legacy.pth"), [0x80, 2, (byte)'}', (byte)'.']);
        File.WriteAllBytes(P("text.pth"), "not a checkpoint"u8.ToArray());
        File.WriteAllBytes(P("empty.pth"), []);
        foreach (var (file, expected) in new[] { ("half.pth", "is not a valid zip archive"), ("legacy.pth", "legacy format"),
                     ("text.pth", "neither a PyTorch zip checkpoint"), ("empty.pth", "neither a PyTorch zip checkpoint") })
        {
            var e = Assert.Throws<MambaADException>(() => PyTorchFile.Read(P(file), "weights"));
            Assert.Contains(expected, e.Message);
            Assert.Contains(P(file), e.Message);
        }
    }
}
