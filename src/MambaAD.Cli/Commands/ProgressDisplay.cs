using System.CommandLine;
using MambaAD.Training;
using Spectre.Console;

namespace MambaAD.Cli.Commands;

/// <summary>How long work reports itself: a live bar (interactive terminals), plain log lines (files, CI) or quiet.</summary>
internal enum DisplayMode { Auto, Bar, Plain, Quiet }

/// <summary>Shows <see cref="TrainingProgress"/> reports: epoch/iteration, loss, images/s and ETA.</summary>
internal static class ProgressDisplay
{
    public static Option<DisplayMode> Option() => new("--progress")
    {
        Description = "Progress display: auto (a live bar on a terminal, plain lines otherwise), bar, plain or quiet",
        DefaultValueFactory = _ => DisplayMode.Auto,
    };

    /// <summary>Runs <paramref name="work"/> with a display of its progress reports.</summary>
    public static T Run<T>(DisplayMode mode, Func<IProgress<TrainingProgress>, T> work)
    {
        if (mode == DisplayMode.Auto) mode = Console.IsOutputRedirected ? DisplayMode.Plain : DisplayMode.Bar;
        if (mode != DisplayMode.Bar) return work(new LineProgress(mode == DisplayMode.Quiet));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: 1);
                result = work(new BarProgress(task));
            });
        return result;
    }

    private sealed class BarProgress(ProgressTask task) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Phase == TrainingPhase.Warning) { Console.Error.WriteLine($"warning: {p.Message}"); return; }
            if (p.Iterations > 0)
            {
                task.MaxValue = p.Iterations;
                task.Value = p.Iteration;
            }
            if (p.Phase == TrainingPhase.Train && p.Message is null)
                task.Description = $"epoch {p.Epoch}/{p.Epochs} · it {p.Iteration}/{p.Iterations} · loss {p.Loss:F4} · {p.ImagesPerSecond:F1} img/s";
            else if (p.Phase == TrainingPhase.Test && p.Message is { } m && m.StartsWith("testing")) task.Description = m;
            if (p.Message is { } msg && !msg.StartsWith("testing")) AnsiConsole.MarkupLineInterpolated($"[grey]{msg}[/]");
        }
    }

    private sealed class LineProgress(bool quiet) : IProgress<TrainingProgress>
    {
        private DateTime _last = DateTime.MinValue;

        public void Report(TrainingProgress p)
        {
            if (p.Phase == TrainingPhase.Warning) { Console.Error.WriteLine($"warning: {p.Message}"); return; }
            if (p.Message is { } msg)
            {
                if (!quiet || p.Phase is TrainingPhase.Test && !msg.StartsWith("testing")) Console.WriteLine(msg);
                return;
            }
            if (quiet || p.Phase != TrainingPhase.Train || DateTime.UtcNow - _last < TimeSpan.FromSeconds(10) && p.Iteration != p.Iterations) return;
            _last = DateTime.UtcNow;
            Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}  iteration {p.Iteration}/{p.Iterations}  loss {p.Loss:F4}  " +
                              $"{p.ImagesPerSecond:F1} img/s  eta {p.Eta:hh\\:mm\\:ss}");
        }
    }
}
