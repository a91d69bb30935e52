namespace MambaAD.Data.Layouts;

/// <summary>Uni-Medical: the class-folder layout under a root named <c>medical</c>, in the official class order.</summary>
internal sealed class MedicalLayout : FolderLayout
{
    public override string Name => "medical";
    public override string Looks => "class folders under a root named medical";
    protected override IReadOnlyList<string>? OfficialOrder => ["brain", "liver", "retinal"];
    public override bool Matches(string root) => RootName(root) == "medical" && base.Matches(root);
}
