using BenchmarkDotNet.Running;

// Stopwatch harnesses by sub-command (one line each); anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "scan") return MambaAD.Bench.ScanBench.Run(args[1..]);

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
