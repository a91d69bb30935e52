using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace MambaAD.Util;

/// <summary>
/// Runs work on libtorch's own OpenMP threads through libgomp's <c>GOMP_parallel</c> (what <c>#pragma omp parallel</c>
/// compiles to): the calling thread and the workers of its OpenMP pool. After each libtorch operation those workers
/// spin for a while before they sleep, so work handed to .NET's thread pool instead shares a core with a spinning
/// worker until the spin ends (on 2 cores our kernels' second thread then barely ran), and libtorch's next operation
/// finds its worker asleep. On the team, work starts at once and leaves the worker spinning for libtorch's next
/// operation (docs/performance.md, "Issue 14, phase 13"). Linux only, where libtorch ships libgomp; elsewhere
/// <see cref="Available"/> is false.
/// </summary>
internal static unsafe class OpenMpTeam
{
    private static readonly delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> Parallel = Find();

    /// <summary>Whether libtorch's libgomp is loaded in this process and exports <c>GOMP_parallel</c>.</summary>
    public static bool Available => Parallel != null;

    /// <summary>
    /// Runs <paramref name="work"/> once on each thread of a team of <paramref name="threads"/> (the caller is one) and
    /// returns when all have; the first exception is rethrown on the caller. Called from inside a team (nested), the
    /// team is the caller alone, as OpenMP does by default.
    /// </summary>
    public static void Run(int threads, Action work)
    {
        if (!Available) throw new InvalidOperationException("libtorch's libgomp is not loaded in this process");
        var team = new Team(work);
        var handle = GCHandle.Alloc(team);
        try
        {
            Parallel(&Member, (void*)GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally
        {
            handle.Free();
        }
        team.Error?.Throw();
    }

    private sealed class Team(Action work)
    {
        public readonly Action Work = work;
        public ExceptionDispatchInfo? Error;
    }

    /// <summary>Each team thread's entry from native code: no exception may cross back into libgomp.</summary>
    [UnmanagedCallersOnly]
    private static void Member(void* data)
    {
        var team = (Team)GCHandle.FromIntPtr((nint)data).Target!;
        try
        {
            team.Work();
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref team.Error, ExceptionDispatchInfo.Capture(e), null);
        }
    }

    /// <summary>libtorch's wheel ships libgomp under a hashed name (libgomp-98b21ff3.so.1): the loaded one is found in
    /// the process's mappings rather than by a name that changes between libtorch versions.</summary>
    private static delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> Find()
    {
        if (!OperatingSystem.IsLinux()) return null;
        _ = TorchSharp.torch.get_num_threads();   // loads libtorch, and with it libgomp
        string? path = LoadedLibraries.Find(name => name.StartsWith("libgomp", StringComparison.Ordinal));
        if (path is null || !NativeLibrary.TryLoad(path, out var lib) || !NativeLibrary.TryGetExport(lib, "GOMP_parallel", out var parallel))
            return null;
        return (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel;
    }
}
