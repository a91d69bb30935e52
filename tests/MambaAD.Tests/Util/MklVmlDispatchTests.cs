using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using MambaAD.Util;
using static TorchSharp.torch;

namespace MambaAD.Tests.Util;

/// <summary>
/// Util/MklVmlDispatch resolves MKL's vector math functions single-threaded before the model's first operation. The
/// race it prevents cannot be triggered on demand (one first call per function per process, about one training start
/// in 200 here), so these tests hold the parts that can break: the list must name every VML function the loaded
/// libtorch links, and resolving must leave each function computing what it did.
/// </summary>
public partial class MklVmlDispatchTests
{
    [GeneratedRegex("^vm([sd])([A-Z][A-Za-z0-9]*)$")]
    private static partial Regex VmlSymbol();

    [Fact]
    public void The_list_names_every_VML_function_libtorch_exports()
    {
        if (!OperatingSystem.IsLinux()) return;
        _ = get_num_threads();   // loads libtorch
        var library = LoadedLibraries.Find(name => name == "libtorch_cpu.so");
        Assert.True(library is not null, "libtorch_cpu.so is not among this process's mapped files");
        using var elf = ELFReader.Load(library);
        var exported = elf.GetSections<ISymbolTable>().Where(s => s.Name == ".dynsym")
            .SelectMany(s => s.Entries).Select(e => VmlSymbol().Match(e.Name)).Where(m => m.Success)
            .Select(m => $"vm{m.Groups[1].Value}{m.Groups[2].Value}").ToHashSet();
        Assert.NotEmpty(exported);   // a libtorch without MKL would need no list: then this test must be rethought
        var listed = MklVmlDispatch.Functions.SelectMany(f => new[] { $"vms{f.Symbol}", $"vmd{f.Symbol}" }).ToHashSet();
        var unlisted = exported.Except(listed).ToList();
        var absent = listed.Except(exported).ToList();
        Assert.True(unlisted.Count == 0, $"{library} exports VML functions MklVmlDispatch.Functions lacks: {string.Join(", ", unlisted)}");
        Assert.True(absent.Count == 0, $"MklVmlDispatch.Functions lists functions {library} does not export: {string.Join(", ", absent)}");
    }

    [Fact]
    public void Resolved_functions_agree_with_float64_on_a_parallel_sized_tensor()
    {
        MklVmlDispatch.Resolve();
        using var scope = NewDisposeScope();
        var x = linspace(0.01, 0.99, 65536, dtype: ScalarType.Float32);   // in every function's domain, 2 chunks or more
        foreach (var (symbol, function) in MklVmlDispatch.Functions)
        {
            var single = function(x).to(ScalarType.Float64);
            var exact = function(x.to(ScalarType.Float64));
            double worst = ((single - exact).abs() / exact.abs().clamp_min(1e-30)).max().item<double>();
            Assert.True(worst < 1e-6, $"{symbol}: float32 off float64 by {worst:E2} relative (a less accurate kernel?)");
        }
    }
}
