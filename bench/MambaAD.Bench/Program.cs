using BenchmarkDotNet.Running;
using MambaAD.Bench;

// Simple harnesses first (plain Stopwatch, median of runs); anything else goes to BenchmarkDotNet's switcher.
return args.FirstOrDefault() switch
{
    "eval" => EvalBench.Run(args[1..]),
    "synth-maps" => EvalBench.SynthMaps(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(EvalBench).Assembly).Run(args);
    return 0;
}
