using System.Diagnostics;
using MambaAD.Onnx;

namespace MambaAD.Tests.Onnx;

/// <summary>The export passes the ONNX checker with full shape inference (Debian's python3-onnx).</summary>
[Collection("Torch")]
public sealed class OnnxCheckerTests : IDisposable
{
    /// <summary>Debian's interpreter (not a pyenv shim on PATH): python3-onnx installs for it.</summary>
    private const string Python = "/usr/bin/python3";

    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-check-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [OnnxCheckerFact]
    public void ExportPassesTheFullOnnxChecker()
    {
        using var model = OnnxTestModels.Small();
        foreach (var options in new[] { new OnnxExportOptions(), new OnnxExportOptions { Batch = 3, ScanFormulation = ScanFormulation.Sequential } })
        {
            var path = OnnxTestModels.Export(model, dir, options);
            var (code, text) = RunPython($"import onnx; onnx.checker.check_model('{path}', full_check=True); print('ok')");
            Assert.True(code == 0 && text.Trim().EndsWith("ok"), $"onnx.checker rejected the export ({options}): {text}");
        }
    }

    internal static (int Code, string Output) RunPython(string code)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(code);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Skips, with the reason, where Debian's python3-onnx is not installed.</summary>
    public sealed class OnnxCheckerFactAttribute : FactAttribute
    {
        public OnnxCheckerFactAttribute()
        {
            if (!File.Exists(Python)) Skip = $"needs {Python} with python3-onnx (apt-get install -y python3-onnx) for onnx.checker";
            else if (RunPython("import onnx").Code != 0) Skip = "needs python3-onnx (apt-get install -y python3-onnx) for onnx.checker";
        }
    }
}
