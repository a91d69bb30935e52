using System.Diagnostics;
using System.Runtime.ExceptionServices;
using MambaAD.Imaging;
using MambaAD.Inference;

namespace MambaAD.Server;

/// <summary>Where the served model is in its life: <c>/health</c> answers 200 only when <see cref="Ready"/>.</summary>
internal enum ModelStatus { Loading, WarmingUp, Ready, Draining, Failed }

/// <summary>
/// The model behind the server and whether it can serve. It is loaded in the background once the server listens (so
/// that liveness probes are answered while a large checkpoint loads), then warmed up by one forward pass on a grey
/// image (first-call initialisation of libtorch and the JIT is paid there, not by the first request), then ready.
/// When the host stops it drains: the predictor is freed only after every admitted request has left.
/// </summary>
internal sealed class ServedModel(Func<CancellationToken, Predictor> load, bool ownsPredictor, AdmissionGate gate, TimeSpan drainLimit) : IAsyncDisposable, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Predictor? _predictor;
    private Task _loading = Task.CompletedTask;
    private volatile ModelStatus _status = ModelStatus.Loading;
    private int _disposed;
    private readonly Lock _handoff = new();
    private bool _abandoned;

    public ModelStatus Status => _status;
    /// <summary>Seconds the load and the warm-up forward took (shown by <c>/health</c> once ready).</summary>
    public double LoadSeconds { get; private set; }
    public double WarmUpSeconds { get; private set; }
    public ExceptionDispatchInfo? LoadError { get; private set; }

    /// <summary>The predictor when requests may use it (ready, or draining the requests already admitted), else null.</summary>
    public Predictor? Predictor => _status is ModelStatus.Ready or ModelStatus.Draining ? _predictor : null;

    /// <summary>Completes with true once ready, false when loading failed or the server stopped first.</summary>
    public Task<bool> WhenReady => _ready.Task;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Loads and warms up on the thread pool; a failure is kept in <see cref="LoadError"/> and <paramref name="onFailure"/> is called (it stops the host).</summary>
    public void StartLoading(Action onFailure)
    {
        _loading = Task.Run(() =>
        {
            try
            {
                long start = Stopwatch.GetTimestamp();
                var predictor = load(_stopping.Token);
                lock (_handoff)
                {
                    if (_abandoned)
                    {
                        // Disposed while loading, without waiting for the load: nobody else will free this.
                        if (ownsPredictor) predictor.Dispose();
                        _ready.TrySetResult(false);
                        return;
                    }
                    _predictor = predictor;
                    _status = ModelStatus.WarmingUp;
                }
                LoadSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                start = Stopwatch.GetTimestamp();
                int s = predictor.ImageSize;
                predictor.Predict([new RgbImage(s, s, Enumerable.Repeat((byte)128, s * s * 3).ToArray())], _stopping.Token);
                WarmUpSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (_stopping.IsCancellationRequested) return;
                _status = ModelStatus.Ready;
                _ready.TrySetResult(true);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                _ready.TrySetResult(false);
            }
            catch (Exception e)
            {
                LoadError = ExceptionDispatchInfo.Capture(e);
                _status = ModelStatus.Failed;
                _ready.TrySetResult(false);
                onFailure();
            }
        });
    }

    /// <summary>The host is stopping: <c>/health</c> turns 503; requests already admitted finish.</summary>
    public void BeginDrain()
    {
        if (_status is ModelStatus.Ready) _status = ModelStatus.Draining;
        _stopping.Cancel();
        _ready.TrySetResult(false);
    }

    /// <summary>Waits for the admitted requests to leave (each is bounded by its deadline), then frees the predictor if it is ours.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        // A load in progress is not waited for (a large checkpoint would hold up Ctrl+C): it frees what it loads.
        lock (_handoff) _abandoned = _status is ModelStatus.Loading;
        BeginDrain();
        if (_abandoned) return;
        try { await _loading; } catch (Exception) { /* reported through LoadError */ }
        try { await gate.WhenIdle(CancellationToken.None).WaitAsync(drainLimit); }
        catch (TimeoutException)
        {
            // A request still runs past every deadline: freeing the model under it would crash the process; leak it instead.
            return;
        }
        if (ownsPredictor) _predictor?.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
