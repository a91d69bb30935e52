namespace MambaAD.Server;

/// <summary>Where the inference server listens and the limits that keep a burst or a hostile client from hurting it.</summary>
/// <param name="Urls">Listening addresses, e.g. <c>http://127.0.0.1:5080</c>; port 0 picks a free port (see <see cref="InferenceServer.Addresses"/>).</param>
/// <param name="MaxRequestBytes">Largest request body (Kestrel's limit; 413 above it).</param>
/// <param name="MaxImageSide">Largest image width or height, read from the header before decoding (422 above it).</param>
/// <param name="MaxImagePixels">Most pixels one request may decode, summed over a batch (422 above it): bounds memory per request.</param>
/// <param name="MaxBatchImages">Most images in one <c>/predict/batch</c> request.</param>
/// <param name="MaxConcurrentRequests">Prediction requests processed at once (forward passes are serialised anyway; a few overlap decoding and encoding).</param>
/// <param name="QueueLimit">Prediction requests waiting for a slot; beyond this a request gets 503 at once. Queued requests have not read their body yet, so they cost little memory.</param>
/// <param name="RequestTimeout">Time a prediction request may take, waiting in the queue included (504 after it).</param>
public sealed record ServerOptions(
    IReadOnlyList<string>? Urls = null,
    long MaxRequestBytes = 20 * 1024 * 1024,
    int MaxImageSide = 8192,
    long MaxImagePixels = 4096L * 4096,
    int MaxBatchImages = 16,
    int MaxConcurrentRequests = 4,
    int QueueLimit = 64,
    TimeSpan? RequestTimeout = null)
{
    /// <summary>The default address: loopback only, so that serving to a network is an explicit choice.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5080";

    internal TimeSpan Timeout => RequestTimeout ?? TimeSpan.FromSeconds(30);
}
