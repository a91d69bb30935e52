namespace MambaAD.Data.Layouts;

/// <summary>MVTec AD: the class-folder layout under a root named <c>mvtec</c>, in the official class order.</summary>
internal sealed class MvtecLayout : FolderLayout
{
    /// <summary>The 15 classes in the official order (also used for plain folders that hold only MVTec classes).</summary>
    public static IReadOnlyList<string> Classes { get; } =
        ["carpet", "grid", "leather", "tile", "wood", "bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper"];

    public override string Name => "mvtec";
    public override string Looks => "class folders under a root named mvtec";
    public override bool Matches(string root) => RootName(root) == "mvtec" && base.Matches(root);
}
