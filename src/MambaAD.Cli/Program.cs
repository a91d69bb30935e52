using System.CommandLine;
using MambaAD.Cli.Commands;

namespace MambaAD.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Util.HugePages.Enable();   // before any tensor exists (see HugePages)
        var root = new RootCommand("MambaAD for .NET: multi-class unsupervised visual anomaly detection (He et al., NeurIPS 2024).");
        // One file per command under Commands/, each a thin layer over a library call.
        foreach (var command in Commands())
            root.Subcommands.Add(command);
        try
        {
            // Our exceptions reach the catch below: one line and exit code 2, not System.CommandLine's stack trace.
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (MambaADException e)
        {
            Console.Error.WriteLine($"error: {SettingFlags.Describe(e)}");
            return 2;
        }
    }

    internal static IEnumerable<Command> Commands()
    {
        yield return DemoCommand.Create();
        yield return TrainCommand.Create();
        yield return TestCommand.Create();
        yield return PredictCommand.Create();
        yield return CalibrateCommand.Create();
        yield return EvalCommand.Create();
        yield return ServeCommand.Create();
        yield return InfoCommand.Create();
        yield return BenchCommand.Create();
        yield return ExportCommand.Create();
    }
}
