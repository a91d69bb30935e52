using BenchmarkDotNet.Running;
using MambaAD.Bench;

// Simple harnesses first (plain Stopwatch, median of runs), one line per sub-command; anything else goes to
// BenchmarkDotNet's switcher. The whole model is measured by `mambaad bench`.
MambaAD.Util.HugePages.Enable();
MambaAD.Util.NativeIsaLimit.Apply();
MambaAD.Util.MklVendorCheck.Bypass();
return args.FirstOrDefault() switch
{
    "scan" => ScanBench.Run(args[1..]),
    "parts" => ModelParts.Run(args[1..]),
    "pairs" => TrainPairs.Run(args[1..]),
    "eval" => EvalBench.Run(args[1..]),
    "synth-maps" => EvalBench.SynthMaps(args[1..]),
    "onnx" => OnnxBench.Run(args[1..]),
    "scale-eval-data" => ScaleBench.EvalData(args[1..]),
    "scale-test-data" => ScaleBench.TestData(args[1..]),
    "scale-exact" => ScaleBench.Exact(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(EvalBench).Assembly).Run(args);
    return 0;
}
