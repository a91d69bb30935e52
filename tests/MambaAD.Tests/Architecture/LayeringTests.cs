using System.Text.RegularExpressions;

namespace MambaAD.Tests.Architecture;

/// <summary>
/// The library's folders are its layers, and dependencies point one way (README, "Architecture"): a file may use its
/// own folder and the folders below it, never one above. The test reads the sources (they sit beside the tests in
/// every clone) and lists every reference that points up, so a cycle cannot come back unnoticed.
/// </summary>
public class LayeringTests
{
    /// <summary>Bottom to top. A folder may depend on any folder before it in this list.</summary>
    internal static readonly string[] Layers =
        ["Util", "IO", "Imaging", "Encoders", "Ssm", "Model", "Checkpoints", "Onnx", "Data", "Evaluation", "Inference", "Training", "Reporting"];

    private static string LibraryDir() => Path.Combine(RepoRoot.Path, "src", "MambaAD");

    /// <summary>Folder-namespace references in code: <c>using MambaAD.X;</c>, <c>MambaAD.X.Y</c> and, inside the library, <c>X.Y</c>.</summary>
    internal static IEnumerable<string> Referenced(string source)
    {
        var code = Regex.Replace(source, @"//.*|""(?:\\.|[^""\\])*""", "");
        var names = string.Join("|", Layers.Concat(["Demo", "Benchmarks"]));
        foreach (Match m in Regex.Matches(code, $@"(?<![\w.])(?:MambaAD\.)?({names})\.(?=[A-Z])|using\s+MambaAD\.({names})\s*;"))
            yield return m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
    }

    [Fact]
    public void Every_library_folder_is_a_known_layer()
    {
        var folders = Directory.GetDirectories(LibraryDir()).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).ToList();
        Assert.Empty(folders.Except(Layers));
    }

    [Fact]
    public void Dependencies_point_down_the_layers()
    {
        var root = LibraryDir();
        var upward = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file);
            if (rel.StartsWith("bin") || rel.StartsWith("obj") || !rel.Contains(Path.DirectorySeparatorChar)) continue;
            var folder = rel.Split(Path.DirectorySeparatorChar)[0];
            int own = Array.IndexOf(Layers, folder);
            foreach (var target in Referenced(File.ReadAllText(file)).Distinct())
                if (Array.IndexOf(Layers, target) is var t && (t < 0 || t > own))
                    upward.Add($"{rel} → {target}");
        }
        Assert.True(upward.Count == 0, "references that point up the layers:\n" + string.Join("\n", upward));
    }

    [Theory]
    [InlineData("using MambaAD.Training;\nclass X {}", "Training")]
    [InlineData("var x = Evaluation.MapResize.AlignCorners(a);", "Evaluation")]
    [InlineData("var x = MambaAD.Model.StateDict.Ordered(m);", "Model")]
    public void The_reference_finder_sees_each_form(string code, string expected) =>
        Assert.Equal([expected], Referenced(code));

    [Fact]
    public void The_reference_finder_ignores_comments_strings_and_members()
    {
        Assert.Empty(Referenced("// using MambaAD.Training;\nvar s = \"Training.Run\"; var t = result.Training.Kind;"));
    }
}
