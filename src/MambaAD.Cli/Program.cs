using System.CommandLine;
using MambaAD.Cli.Commands;

namespace MambaAD.Cli;

public static class Program
{
    /// <summary>The exit code of an error that is a bug in mambaad rather than something the user can fix (sysexits EX_SOFTWARE).</summary>
    internal const int BugExitCode = 70;

    private static int _handlerInstalled;

    public static int Main(string[] args)
    {
        Util.HugePages.Enable();   // before any tensor exists (see HugePages)
        Util.Nnpack.Disable();     // no stderr flood where NNPACK cannot start (see Nnpack)
        Util.NativeIsaLimit.Apply();    // libtorch's libraries at .NET's vector width, before their first use (see NativeIsaLimit)
        Util.MklVendorCheck.Bypass();   // MKL's kernels by instruction set on AMD, before the first GEMM (see MklVendorCheck)
        if (Interlocked.Exchange(ref _handlerInstalled, 1) == 0)
            AppDomain.CurrentDomain.UnhandledException += (_, e) =>
            {
                // A failure on a background thread: one line, not the runtime's stack trace.
                ReportBug(e.ExceptionObject as Exception);
                Environment.Exit(BugExitCode);
            };
        var root = new RootCommand("MambaAD for .NET: multi-class unsupervised visual anomaly detection (He et al., NeurIPS 2024).");
        // One file per command under Commands/, each a thin layer over a library call.
        foreach (var command in Commands())
            root.Subcommands.Add(command);
        var parse = root.Parse(args);
        // serve leaves SIGINT/SIGTERM to its web host, which drains the requests in progress.
        using var interruption = parse.CommandResult.Command.Name == "serve" ? null : Interruption.Listen();
        int code;
        try
        {
            // Our exceptions reach the catches below: one line and exit code 2, not System.CommandLine's stack trace.
            code = parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null },
                interruption?.Token ?? default).GetAwaiter().GetResult();
        }
        catch (Exception e) when (interruption?.ExitCode is { } signalled && (e is OperationCanceledException or MambaADException))
        {
            Console.Error.WriteLine(e is MambaADException m ? $"interrupted ({interruption.SignalName}): {SettingFlags.Describe(m)}" : $"interrupted ({interruption.SignalName})");
            return signalled;
        }
        catch (MambaADException e)
        {
            Console.Error.WriteLine($"error: {SettingFlags.Describe(e)}");
            return 2;
        }
        catch (Exception e) when (IO.IoError.Is(e))
        {
            // A file-system failure that no layer below turned into a MambaADException: still one line, with its path.
            Console.Error.WriteLine($"error: {e.Message.Split('\n')[0].Trim()}");
            return 2;
        }
        catch (OutOfMemoryException)
        {
            Console.Error.WriteLine("error: out of memory; lower --batch, --workers or --image-size, or free memory");
            return 2;
        }
        catch (Exception e)
        {
            ReportBug(e);
            return BugExitCode;
        }
        // A command that stopped early because of a signal exits with the signal's code.
        return interruption?.ExitCode is { } exit && code != 0 ? exit : code;
    }

    private static void ReportBug(Exception? e)
    {
        Console.Error.WriteLine($"internal error: {e?.GetType().Name}: {e?.Message.Split('\n')[0].Trim()} — this is a bug in mambaad, please report it with the command line" +
            (Environment.GetEnvironmentVariable("MAMBAAD_DEBUG") == "1" ? "" : " (MAMBAAD_DEBUG=1 prints the details)"));
        if (Environment.GetEnvironmentVariable("MAMBAAD_DEBUG") == "1") Console.Error.WriteLine(e);
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
