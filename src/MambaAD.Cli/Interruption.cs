using System.Runtime.InteropServices;

namespace MambaAD.Cli;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM for the commands. The first signal cancels the one token every command is handed, so
/// that the work stops at its next safe point — training saves its exact position, test and calibrate write nothing
/// — and the exit code says which signal it was (128 + its number: 130 for SIGINT, 143 for SIGTERM). A second signal
/// is not intercepted: its default action ends the process at once, and the crash-safe saves leave a consistent
/// checkpoint whatever moment it hits.
/// </summary>
/// <remarks>
/// System.CommandLine's own termination handling is turned off (its token never reached our synchronous command
/// bodies, and its grace period would kill a save half-way). <c>serve</c> does not use this: the web host handles
/// the signals itself and drains the requests in progress.
/// </remarks>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _signal; // 0 until the first signal

    private Interruption()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    /// <summary>Starts listening for SIGINT and SIGTERM (until disposed).</summary>
    public static Interruption Listen() => new();

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>128 + the number of the first signal received, or null when none was.</summary>
    public int? ExitCode => Volatile.Read(ref _signal) is var s and > 0 ? 128 + s : null;

    /// <summary>The first signal's name ("SIGINT" or "SIGTERM"), or null.</summary>
    public string? SignalName => Volatile.Read(ref _signal) switch { 2 => "SIGINT", 15 => "SIGTERM", _ => null };

    private void OnSignal(PosixSignalContext context)
    {
        int number = context.Signal == PosixSignal.SIGINT ? 2 : 15;
        if (Interlocked.CompareExchange(ref _signal, number, 0) != 0) return; // the second: default action, at once
        context.Cancel = true;
        Console.Error.WriteLine($"{Environment.NewLine}{SignalName}: stopping at the next safe point (training saves its position after the current step); send it again to stop at once");
        _cts.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
    }
}
