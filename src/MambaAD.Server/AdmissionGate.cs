namespace MambaAD.Server;

/// <summary>
/// Admission of prediction requests: at most <c>slots + queue</c> admitted at once (beyond that 503 at once), of which
/// at most <c>slots</c> hold a slot (decoding, the forward, encoding). An admitted request first receives its body,
/// holding no slot, then waits for a slot first come first served, under its own deadline — so a slow uploader
/// takes a queue place, never a slot, and a request that times out while it waits gets its 504 at once.
/// </summary>
/// <remarks>
/// Replaces ASP.NET's concurrency limiter, which took a slot before the body was read and, cancelled while queued,
/// ended the request with an empty 200 instead of an error.
/// </remarks>
internal sealed class AdmissionGate(int slots, int queue)
{
    private readonly SemaphoreSlim _slots = new(slots, slots);
    private readonly Lock _lock = new();
    private int _admitted, _receiving, _waiting, _active;
    private TaskCompletionSource _idle = NewIdle(completed: true);

    public int Slots => slots;
    public int QueueLimit => queue;
    /// <summary>Admitted requests that are receiving their body.</summary>
    public int Receiving => Volatile.Read(ref _receiving);
    /// <summary>Admitted requests that wait for a slot (their body received).</summary>
    public int Waiting => Volatile.Read(ref _waiting);
    /// <summary>Requests holding a slot.</summary>
    public int Active => Volatile.Read(ref _active);
    /// <summary>Every admitted request, whatever its stage (the answer being written included).</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>A ticket for one request, or null when <c>slots + queue</c> requests are already admitted.</summary>
    public Ticket? TryAdmit()
    {
        lock (_lock)
        {
            if (_admitted >= slots + queue) return null;
            if (_admitted++ == 0) _idle = NewIdle(completed: false);
            Interlocked.Increment(ref _receiving);
            return new Ticket(this);
        }
    }

    /// <summary>Completes when no request is admitted (for draining before the model is freed).</summary>
    public Task WhenIdle(CancellationToken ct)
    {
        lock (_lock) return _idle.Task.WaitAsync(ct);
    }

    private void Leave()
    {
        lock (_lock)
            if (--_admitted == 0) _idle.TrySetResult();
    }

    private static TaskCompletionSource NewIdle(bool completed)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed) tcs.SetResult();
        return tcs;
    }

    /// <summary>One admitted request: receiving its body, then waiting for a slot, then holding it, then answering.</summary>
    public sealed class Ticket(AdmissionGate gate) : IDisposable
    {
        private bool _receiving = true, _holdsSlot, _left;

        /// <summary>The body is received: waits for a slot (first come, first served) until <paramref name="ct"/> is cancelled.</summary>
        public async Task WaitForSlotAsync(CancellationToken ct)
        {
            Received();
            Interlocked.Increment(ref gate._waiting);
            try
            {
                await gate._slots.WaitAsync(ct);
                Interlocked.Increment(ref gate._active);
                _holdsSlot = true;
            }
            finally
            {
                Interlocked.Decrement(ref gate._waiting);
            }
        }

        /// <summary>Frees the slot (the work that needs one is done); the request stays admitted until disposed.</summary>
        public void ReleaseSlot()
        {
            if (!_holdsSlot) return;
            _holdsSlot = false;
            Interlocked.Decrement(ref gate._active);
            gate._slots.Release();
        }

        private void Received()
        {
            if (!_receiving) return;
            _receiving = false;
            Interlocked.Decrement(ref gate._receiving);
        }

        public void Dispose()
        {
            Received();
            ReleaseSlot();
            if (_left) return;
            _left = true;
            gate.Leave();
        }
    }
}
