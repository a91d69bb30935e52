namespace MambaAD.Data.Layouts;

/// <summary>
/// BTAD: class folders whose normal images are in <c>ok</c> (train/ok, test/ok; defects in test/ko), and masks
/// paired with images by sorted index, because their extensions differ by class (the official generator does so).
/// </summary>
internal sealed class BtadLayout : FolderLayout
{
    public override string Name => "btad";
    public override string Looks => "<class>/train/ok, test/ok|ko";
    protected override IReadOnlyList<string>? OfficialOrder => ["01", "02", "03"];
    protected override bool PairMasksByIndex => true;
    public override bool Matches(string root) => ClassDirs(root).Any(d => Directory.Exists(Path.Combine(d, "train", "ok")));
}
