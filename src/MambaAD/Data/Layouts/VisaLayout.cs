namespace MambaAD.Data.Layouts;

/// <summary>
/// VisA (spec §15): the original archive layout plus <c>split_csv/1cls.csv</c> with columns
/// <c>object,split,label,image,mask</c>; split ∈ {train, test}, label ∈ {normal, anomaly}; paths relative to the root.
/// Normal images get the defect type "good", anomalous ones "anomaly" (VisA has no defect types in this split).
/// </summary>
internal sealed class VisaLayout : IDatasetLayout
{
    private static readonly IReadOnlyList<string> Classes =
        ["pcb1", "pcb2", "pcb3", "pcb4", "macaroni1", "macaroni2", "capsules", "candle", "cashew", "chewinggum", "fryum", "pipe_fryum"];

    public string Name => "visa";
    public string Looks => "split_csv/1cls.csv";
    public bool Matches(string root) => File.Exists(Path.Combine(root, "split_csv", "1cls.csv"));

    public RawDataset Read(string root, Problems problems)
    {
        var csv = Path.Combine(root, "split_csv", "1cls.csv");
        if (!File.Exists(csv)) throw new MambaADException($"{csv}: not found (the visa layout reads split_csv/1cls.csv with object,split,label,image,mask)");
        var lines = File.ReadAllLines(csv);
        if (lines.Length == 0) throw new MambaADException($"{csv}: empty (expected the header object,split,label,image,mask)");
        var header = lines[0].Split(',').Select(h => h.Trim()).ToList();
        int Col(string name) => header.IndexOf(name) is var i and >= 0 ? i
            : throw new MambaADException($"{csv}: no '{name}' column (expected object,split,label,image,mask; found {lines[0]})");
        int co = Col("object"), cs = Col("split"), cl = Col("label"), ci = Col("image"), cm = Col("mask");
        var train = new List<Sample>();
        var test = new List<Sample>();
        var classes = new List<string>();
        for (int n = 1; n < lines.Length; n++)
        {
            if (string.IsNullOrWhiteSpace(lines[n])) continue;
            var f = lines[n].Split(',');
            if (f.Length < header.Count) throw new MambaADException($"{csv}: line {n + 1} has {f.Length} fields, expected {header.Count}");
            string cls = f[co].Trim(), split = f[cs].Trim(), label = f[cl].Trim();
            if (!classes.Contains(cls)) classes.Add(cls);
            bool anomalous = label == "anomaly";
            if (!anomalous && label != "normal") throw new MambaADException($"{csv}: line {n + 1} has label '{label}', expected normal or anomaly");
            string image = Path.Combine(root, f[ci].Trim());
            string? mask = anomalous && f[cm].Trim().Length > 0 ? Path.Combine(root, f[cm].Trim()) : null;
            var sample = new Sample(image, cls, anomalous ? "anomaly" : "good", mask, anomalous);
            if (split == "train") { if (!anomalous) train.Add(sample); }
            else if (split == "test") test.Add(sample);
            else throw new MambaADException($"{csv}: line {n + 1} has split '{split}', expected train or test");
        }
        return new RawDataset(DatasetLayouts.Order(Classes, classes), train, test);
    }
}
