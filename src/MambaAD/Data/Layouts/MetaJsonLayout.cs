using System.Text.Json;

namespace MambaAD.Data.Layouts;

/// <summary>
/// ADer's <c>meta.json</c> (spec §15.1): <c>{"train": {cls: [rec…]}, "test": {cls: [rec…]}}</c> (MVTec 3D also has
/// "validation", which joins training); records <c>{img_path, mask_path, cls_name, specie_name, anomaly}</c> with
/// paths relative to the root and <c>mask_path</c> "" for normal images. Classes keep the meta's key order.
/// </summary>
internal sealed class MetaJsonLayout : IDatasetLayout
{
    public string Name => "meta";
    public string Looks => "meta.json";
    public bool Matches(string root) => File.Exists(Path.Combine(root, "meta.json"));

    public RawDataset Read(string root, Problems problems)
    {
        var path = Path.Combine(root, "meta.json");
        if (!File.Exists(path)) throw new MambaADException($"{path}: not found (the meta layout reads ADer's meta.json)");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new MambaADException($"{path}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var classes = new List<string>();
            var train = new List<Sample>();
            var test = new List<Sample>();
            foreach (var split in new[] { "test", "train", "validation" })
            {
                if (!doc.RootElement.TryGetProperty(split, out var byClass))
                {
                    if (split == "validation") continue;
                    throw new MambaADException($"{path}: no \"{split}\" key (expected {{\"train\": {{class: [records]}}, \"test\": {{…}}}})");
                }
                if (byClass.ValueKind != JsonValueKind.Object)
                    throw new MambaADException($"{path}: \"{split}\" is not an object of classes (expected {{class: [records]}})");
                foreach (var cls in byClass.EnumerateObject())
                {
                    // Class and defect names become folder names of outputs (test --save-maps): plain names only.
                    CheckName(cls.Name, "class name", path);
                    if (!classes.Contains(cls.Name)) classes.Add(cls.Name);
                    if (cls.Value.ValueKind != JsonValueKind.Array)
                        throw new MambaADException($"{path}: class '{cls.Name}' in \"{split}\" is not a list of records");
                    foreach (var rec in cls.Value.EnumerateArray())
                    {
                        if (rec.ValueKind != JsonValueKind.Object)
                            throw new MambaADException($"{path}: a record of class '{cls.Name}' is not an object (expected img_path, mask_path, cls_name, specie_name, anomaly)");
                        string img = Str(rec, "img_path", path);
                        string mask = rec.TryGetProperty("mask_path", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
                        string specie = rec.TryGetProperty("specie_name", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
                        bool anomalous = Anomaly(rec, img, path);
                        if (anomalous && specie.Length > 0) CheckName(specie, "specie_name", path);
                        string defect = !anomalous ? "good" : specie.Length > 0 ? specie : "anomaly";
                        var sample = new Sample(Path.Combine(root, img), cls.Name, defect,
                            anomalous && mask.Length > 0 ? Path.Combine(root, mask) : null, anomalous);
                        if (split == "test") test.Add(sample);
                        else if (!anomalous) train.Add(sample);
                    }
                }
            }
            return new RawDataset(classes, train, test);
        }
    }

    /// <summary>The record's "anomaly": 0/1 or false/true; anything else is an error naming the record.</summary>
    private static bool Anomaly(JsonElement rec, string img, string path)
    {
        if (!rec.TryGetProperty("anomaly", out var a) || a.ValueKind == JsonValueKind.Null) return false;
        return a.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number when a.TryGetDouble(out var v) && v is 0 or 1 => v == 1,
            _ => throw new MambaADException($"{path}: the record of {img} has \"anomaly\": {a.GetRawText()}; expected 0 (normal) or 1 (anomalous)"),
        };
    }

    private static void CheckName(string name, string what, string path)
    {
        if (!IO.OutputPath.IsPlainName(name))
            throw new MambaADException($"{path}: the {what} '{name}' is not a plain name (no '/', '\\', '..' or absolute path); names become folder names of outputs, so rename it in meta.json");
    }

    private static string Str(JsonElement rec, string key, string path) =>
        rec.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw new MambaADException($"{path}: a record has no \"{key}\" (expected img_path, mask_path, cls_name, specie_name, anomaly)");
}
