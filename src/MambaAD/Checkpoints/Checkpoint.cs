using System.Collections;
using MambaAD.IO;
using MambaAD.Imaging;
using MambaAD.Model;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Checkpoints;

/// <summary>
/// Checkpoints: a folder with <c>model.pth</c> (the official state_dict, zip format, loadable by the official
/// Python code with <c>load_state_dict</c>) and <c>model.json</c> (<see cref="CheckpointInfo"/>). Both are written
/// atomically, model.json last, so a folder with a model.json is complete. Official checkpoints (a bare state_dict
/// or <c>{"net": state_dict}</c>) load too, assuming the official configuration unless told otherwise.
/// </summary>
public static class Checkpoint
{
    /// <summary>The official state_dict's file name in a checkpoint folder.</summary>
    public const string ModelFile = "model.pth";

    /// <summary>The description's file name in a checkpoint folder (<see cref="CheckpointInfo"/>).</summary>
    public const string InfoFile = "model.json";

    /// <summary>Writes <paramref name="model"/> and <paramref name="info"/> into <paramref name="dir"/> (model.json last).</summary>
    internal static void Save(string dir, MambaADModel model, CheckpointInfo info)
    {
        WriteModel(dir, model);
        WriteInfo(dir, info);
    }

    /// <summary>Writes model.pth (the official state_dict) into <paramref name="dir"/>.</summary>
    internal static void WriteModel(string dir, MambaADModel model) =>
        PyTorchFile.WriteStateDict(Path.Combine(dir, ModelFile), StateDict.Ordered(model));

    /// <summary>Writes model.json into <paramref name="dir"/>: the last file of a checkpoint, which marks it complete.</summary>
    internal static void WriteInfo(string dir, CheckpointInfo info) =>
        AtomicFile.WriteAllText(Path.Combine(dir, InfoFile), info.ToJson());

    /// <summary>Stores thresholds in the model.json of a checkpoint folder (written by us) and returns its path.</summary>
    public static string SetThresholds(string checkpointDir, Thresholds thresholds)
    {
        var infoPath = Path.Combine(checkpointDir, InfoFile);
        if (!File.Exists(infoPath))
            throw new MambaADException($"{checkpointDir} has no {InfoFile}: thresholds are stored there, so calibrate a checkpoint saved by mambaad train");
        var info = CheckpointInfo.FromJson(File.ReadAllText(infoPath), infoPath);
        AtomicFile.WriteAllText(infoPath, (info with { Thresholds = thresholds }).ToJson());
        return infoPath;
    }

    /// <summary>
    /// Finds model.pth for a path: the file itself; a checkpoint folder; or a run folder (its <c>best</c>, else <c>last</c>).
    /// </summary>
    public static string Resolve(string path)
    {
        if (File.Exists(path)) return Path.GetFullPath(path);
        if (Directory.Exists(path))
        {
            foreach (var candidate in new[] { path, RunFolder.Of(path, CheckpointKind.Best), RunFolder.Of(path, CheckpointKind.Last) })
                if (File.Exists(Path.Combine(candidate, ModelFile))) return Path.GetFullPath(Path.Combine(candidate, ModelFile));
            throw new MambaADException($"{path}: no {ModelFile} in it, nor in its best/ or last/ folders; give a model.pth, a checkpoint folder or a run folder", "Checkpoint");
        }
        throw new MambaADException($"{path} does not exist: give a model.pth, a checkpoint folder or a run folder", "Checkpoint");
    }

    /// <summary>
    /// Loads a checkpoint. <paramref name="officialConfig"/> is the configuration assumed for an official checkpoint
    /// (one without model.json); ours carry their own.
    /// </summary>
    internal static LoadedCheckpoint Load(string path, MambaADConfig? officialConfig = null, string device = "cpu")
    {
        var modelPath = Resolve(path);
        var infoPath = Path.Combine(Path.GetDirectoryName(modelPath)!, InfoFile);
        CheckpointInfo info = File.Exists(infoPath)
            ? CheckpointInfo.FromJson(File.ReadAllText(infoPath), infoPath)
            : new CheckpointInfo(CheckpointInfo.CurrentFormat, officialConfig ?? new MambaADConfig(),
                $"official checkpoint {modelPath}", InputNormalization.ImageNet, [], null, null, DateTime.UtcNow.ToString("O"));
        // The file first: a broken or hostile one is refused before a model is built for it.
        var table = PyTorchFile.Read(modelPath, "checkpoint");
        MambaADModel? model = null;
        try
        {
            var stateDict = StateDictOf(table, modelPath);
            model = new MambaADModel(info.Config);
            StateDict.Load(model, stateDict, $"checkpoint {modelPath}");
            CheckScanOrder(model, modelPath);
            model.to(new Device(device));
            model.eval();
            return new LoadedCheckpoint(model, info, modelPath);
        }
        catch
        {
            model?.Dispose();
            throw;
        }
        finally
        {
            PyTorchFile.DisposeAll(table);
        }
    }

    /// <summary>The state_dict inside a file: top level, or under "net" / "state_dict" / "model".</summary>
    private static Dictionary<string, Tensor> StateDictOf(Hashtable top, string origin)
    {
        foreach (var key in new[] { "net", "state_dict", "model" })
            if (top[key] is Hashtable inner && inner.Values.OfType<Tensor>().Any()) return Tensors(inner, origin);
        return Tensors(top, origin);
    }

    private static Dictionary<string, Tensor> Tensors(Hashtable t, string origin)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry e in t)
        {
            if (e.Value is not Tensor tensor) continue;
            if (e.Key is not string name)
                throw new MambaADException($"checkpoint {origin}: a tensor is stored under the key {e.Key} ({e.Key.GetType().Name}), not under a parameter name; a state_dict maps names to tensors", "Checkpoint");
            result[name] = tensor;
        }
        return result;
    }

    /// <summary>The checkpoint's scan indices must be the order the configuration builds (spec §18: a cross-check).</summary>
    private static void CheckScanOrder(MambaADModel model, string origin)
    {
        foreach (var (name, t) in StateDict.Ordered(model).Where(e => e.Name.EndsWith(".scans.index_flat")))
        {
            int side = (int)Math.Sqrt(t.numel());
            var stored = t.data<long>().ToArray();
            if (stored.SequenceEqual(ScanOrder.Locs(model.Config.Scan, side))) continue;
            var match = Enum.GetValues<ScanType>().FirstOrDefault(s => stored.SequenceEqual(ScanOrder.Locs(s, side)), model.Config.Scan);
            string hint = match != model.Config.Scan ? $"it was trained with the {ScanOrder.Name(match)} scan" : "its scan indices match no known scan type";
            throw new MambaADException($"checkpoint {origin}: {name} is not the {ScanOrder.Name(model.Config.Scan)} order; {hint}", nameof(MambaADConfig.Scan));
        }
    }
}
