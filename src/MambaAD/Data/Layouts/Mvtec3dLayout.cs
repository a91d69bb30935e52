namespace MambaAD.Data.Layouts;

/// <summary>
/// MVTec 3D-AD, RGB only: images in <c>…/rgb/</c>, masks in <c>…/gt/</c> beside them; train and validation normal
/// images are training data.
/// </summary>
internal sealed class Mvtec3dLayout : FolderLayout
{
    public override string Name => "mvtec3d";
    public override string Looks => "<class>/train/good/rgb";
    protected override IReadOnlyList<string>? OfficialOrder => ["bagel", "cable_gland", "carrot", "cookie", "dowel", "foam", "peach", "potato", "rope", "tire"];
    protected override IReadOnlyList<string> TrainSplits => ["train", "validation"];
    protected override bool RgbSubfolders => true;
    public override bool Matches(string root) => ClassDirs(root).Any(d => Directory.Exists(Path.Combine(d, "train", "good", "rgb")));
}
