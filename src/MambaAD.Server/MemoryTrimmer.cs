using System.Runtime;
using MambaAD.Util;

namespace MambaAD.Server;

/// <summary>
/// Keeps the server's memory low during bursts and gives it back to the operating system after them. A request's big
/// buffers live on the large-object heap: the body, the decoded RGB image (a 4096² image: 48 MB, allocated whole
/// before a truncated or hostile file fails; the RGBA it is decoded into is native memory, freed at once), the model
/// input, the maps. The GC let that garbage pile up to gigabytes in a burst of image bombs, and to twice the working
/// size under steady load, and it kept what it had committed while the server was idle. So: after every
/// <see cref="LargeGarbage.Every"/> bytes allocated by the process, a request runs a blocking full collection
/// (<see cref="LargeGarbage"/>: the live heap is small, so it is quick, and the space is reused instead of grown);
/// and once no request has been admitted for two seconds after some were, one aggressive, compacting
/// collection (which decommits free memory) and the C heap's free pages back to the system (native buffers of Skia and
/// libtorch: glibc's <c>malloc_trim</c>, or jemalloc's purge) — at most every ten seconds.
/// </summary>
internal sealed class MemoryTrimmer : IDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1), MinInterval = TimeSpan.FromSeconds(10);
    private const int IdleTicks = 2;

    private readonly AdmissionGate _gate;
    private readonly Timer _timer;
    private long _served, _servedAtTrim, _servedAtTick;
    private int _idleTicks;
    private DateTime _lastTrim = DateTime.MinValue;

    public MemoryTrimmer(AdmissionGate gate)
    {
        _gate = gate;
        _timer = new Timer(_ => OnTick(), null, Tick, Tick);
    }

    /// <summary>Trims done so far (for tests and logs).</summary>
    public int Trims { get; private set; }

    /// <summary>Runs a full collection when one is due (<see cref="LargeGarbage.CollectIfDue"/>).</summary>
    public void CollectIfDue()
    {
        if (LargeGarbage.CollectIfDue()) Collections++;
    }

    /// <summary>Collections run by <see cref="CollectIfDue"/> so far.</summary>
    public int Collections { get; private set; }

    /// <summary>A prediction request has left.</summary>
    public void Served()
    {
        Interlocked.Increment(ref _served);
        CollectIfDue();
    }

    private void OnTick()
    {
        long served = Interlocked.Read(ref _served);
        bool quiet = _gate.Admitted == 0 && served == _servedAtTick;
        _servedAtTick = served;
        _idleTicks = quiet ? _idleTicks + 1 : 0;
        if (_idleTicks < IdleTicks || served == _servedAtTrim || DateTime.UtcNow - _lastTrim < MinInterval) return;
        _servedAtTrim = served;
        _lastTrim = DateTime.UtcNow;
        Trim();
    }

    /// <summary>One aggressive compacting collection, then the C heap's free pages back to the system (glibc's
    /// <c>malloc_trim</c>, or jemalloc's purge when <c>./mambaad</c> preloaded it with its freed pages kept).</summary>
    public void Trim()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        HeapTrim.ReturnAll();
        Trims++;
    }

    public void Dispose() => _timer.Dispose();
}
