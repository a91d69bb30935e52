namespace MambaAD.Data.Layouts;

/// <summary>MPDD: the class-folder layout under a root named <c>mpdd</c>, in the official class order.</summary>
internal sealed class MpddLayout : FolderLayout
{
    public override string Name => "mpdd";
    public override string Looks => "class folders under a root named mpdd";
    protected override IReadOnlyList<string>? OfficialOrder => ["bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"];
    public override bool Matches(string root) => RootName(root) == "mpdd" && base.Matches(root);
}
