using System.Text.Json;

namespace MambaAD.Data.Layouts;

/// <summary>
/// Real-IAD (spec §15): one <c>&lt;class&gt;.json</c> per class (in the root, <c>realiad_jsons/</c> or
/// <c>realiad_jsons/realiad_jsons/</c>) with <c>"train"</c> and <c>"test"</c> lists of
/// <c>{image_path, mask_path, anomaly_class}</c>; <c>anomaly_class</c> "OK" means normal. Image paths are relative
/// to the root or to <c>realiad_1024/</c> / <c>realiad_raw/</c> under it (the first that exists).
/// </summary>
internal sealed class RealIadLayout : IDatasetLayout
{
    public string Name => "realiad";
    public string Looks => "per-class <class>.json";
    public bool Matches(string root) => FindJsonDir(root) is not null;

    private static string? FindJsonDir(string root)
    {
        foreach (var d in new[] { Path.Combine(root, "realiad_jsons", "realiad_jsons"), Path.Combine(root, "realiad_jsons"), root })
        {
            if (!Directory.Exists(d)) continue;
            if (JsonFiles(d).Any(LooksLikeClassJson)) return d;
        }
        return null;
    }

    private static IEnumerable<string> JsonFiles(string dir) =>
        Directory.EnumerateFiles(dir, "*.json").Where(f => Path.GetFileName(f) != "meta.json").Order(StringComparer.Ordinal);

    private static bool LooksLikeClassJson(string file)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("test", out var t) && t.ValueKind == JsonValueKind.Array;
        }
        catch (JsonException) { return false; }
    }

    public RawDataset Read(string root, Problems problems)
    {
        var dir = FindJsonDir(root) ?? throw new MambaADException($"{root}: no Real-IAD class JSON found (expected <class>.json with \"train\" and \"test\" lists, in the root or realiad_jsons/)");
        var classes = new List<string>();
        var train = new List<Sample>();
        var test = new List<Sample>();
        string[] bases = [root, Path.Combine(root, "realiad_1024"), Path.Combine(root, "realiad_raw"), dir];
        foreach (var file in JsonFiles(dir).Where(LooksLikeClassJson))
        {
            string cls = Path.GetFileNameWithoutExtension(file);
            classes.Add(cls);
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            string? imageBase = null;
            foreach (var split in new[] { "train", "test" })
            {
                if (!doc.RootElement.TryGetProperty(split, out var list)) continue;
                foreach (var rec in list.EnumerateArray())
                {
                    string img = rec.TryGetProperty("image_path", out var ip) && ip.ValueKind == JsonValueKind.String ? ip.GetString()!
                        : throw new MambaADException($"{file}: a record has no \"image_path\" (expected image_path, mask_path, anomaly_class)");
                    imageBase ??= bases.FirstOrDefault(b => File.Exists(Path.Combine(b, img))) ?? root;
                    string kind = rec.TryGetProperty("anomaly_class", out var ac) && ac.ValueKind == JsonValueKind.String ? ac.GetString()! : "OK";
                    bool anomalous = kind != "OK";
                    if (anomalous && !IO.OutputPath.IsPlainName(kind)) // defect names become folder names of outputs
                        throw new MambaADException($"{file}: the anomaly_class '{kind}' is not a plain name (no '/', '\\', '..' or absolute path)");
                    string? mask = anomalous && rec.TryGetProperty("mask_path", out var mp) && mp.ValueKind == JsonValueKind.String && mp.GetString()!.Length > 0
                        ? Path.Combine(imageBase, mp.GetString()!) : null;
                    var s = new Sample(Path.Combine(imageBase, img), cls, anomalous ? kind : "good", mask, anomalous);
                    if (split == "test") test.Add(s);
                    else if (!anomalous) train.Add(s);
                }
            }
        }
        return new RawDataset(classes, train, test);
    }
}
