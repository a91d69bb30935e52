using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Primitives;

namespace MambaAD.Server;

/// <summary>Where the inference server listens, whom it answers, and the limits that keep a burst or a hostile client from hurting it.</summary>
/// <param name="Urls">Listening addresses (<c>--urls</c>), e.g. <c>http://127.0.0.1:5080</c>: an IP address, <c>localhost</c>, or
/// <c>*</c> for every interface; port 0 picks a free port (see <see cref="InferenceServer.Addresses"/>). Plain HTTP: put TLS in a
/// reverse proxy or ingress in front.</param>
/// <param name="MaxRequestBytes">Largest request body (<c>--max-request-bytes</c>; 413 above it).</param>
/// <param name="MaxImageSide">Largest image width or height, read from the header before decoding (<c>--max-image-side</c>; 422 above it).</param>
/// <param name="MaxImagePixels">Most pixels one request may decode, summed over a batch (422 above it): bounds memory per request.</param>
/// <param name="MaxBatchImages">Most images in one <c>/predict/batch</c> request.</param>
/// <param name="MaxConcurrentRequests">Prediction requests decoded and scored at once (<c>--concurrency</c>): forward passes are
/// serialised anyway, a few overlap decoding and encoding. Decoding memory is at most this many times <see cref="MaxImagePixels"/> × 7 bytes.</param>
/// <param name="QueueLimit">Prediction requests admitted beyond those (<c>--queue</c>): receiving their body or waiting for a slot.
/// Beyond this a request gets 503 at once. Bodies are read before a slot is taken, so slow uploaders wait here, not in a slot;
/// bodies in memory are bounded by (concurrency + queue) × <see cref="MaxRequestBytes"/>.</param>
/// <param name="RequestTimeout">Time a prediction request may take from its headers to its answer, upload and queueing included
/// (<c>--timeout</c>; 504 after it, whatever stage it is in). Default 30 s.</param>
/// <param name="MinUploadBytesPerSecond">Slowest accepted upload after a 5 s grace period (<c>--min-upload-rate</c>; slower clients are
/// cut off with 408); 0 turns the check off.</param>
/// <param name="AllowedHosts">Host names the server answers to (<c>--allowed-hosts</c>); other <c>Host</c> headers get 421 and other
/// browser <c>Origin</c>s 403, so that a web page cannot reach a local server by DNS rebinding. <c>*</c> allows every host;
/// <c>*.example.com</c> a domain's subdomains. Default: the loopback names.</param>
/// <param name="ImageThreshold">Image threshold for <c>is_anomalous</c> instead of the checkpoint's (<c>--threshold</c>).</param>
public sealed partial record ServerOptions(
    IReadOnlyList<string>? Urls = null,
    long MaxRequestBytes = 20 * 1024 * 1024,
    int MaxImageSide = 8192,
    long MaxImagePixels = 4096L * 4096,
    int MaxBatchImages = 16,
    int MaxConcurrentRequests = 4,
    int QueueLimit = 64,
    TimeSpan? RequestTimeout = null,
    double MinUploadBytesPerSecond = 1024,
    IReadOnlyList<string>? AllowedHosts = null,
    double? ImageThreshold = null)
{
    /// <summary>The default address: loopback only, so that serving to a network is an explicit choice.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5080";

    /// <summary>The default <see cref="AllowedHosts"/>: the names a browser uses for this machine's loopback interface.</summary>
    public static readonly IReadOnlyList<string> LoopbackHosts = ["localhost", "127.0.0.1", "[::1]"];

    internal TimeSpan Timeout => RequestTimeout ?? TimeSpan.FromSeconds(30);
    internal IReadOnlyList<string> Hosts => AllowedHosts ?? LoopbackHosts;
    internal bool AllowsAnyHost => Hosts.Contains("*");

    /// <summary>Converts <c>--timeout</c> seconds, refusing what is not a positive finite number of at most a day.</summary>
    public static TimeSpan TimeoutFromSeconds(double seconds) =>
        double.IsFinite(seconds) && seconds > 0 && seconds <= 86400
            ? TimeSpan.FromSeconds(seconds)
            : throw new MambaADException($"--timeout {Show(seconds)}: give the seconds a request may take, more than 0 and at most 86400 (e.g. 30)");

    /// <summary>Checks every value; the first bad one is a <see cref="MambaADException"/> naming its option and what to give instead.</summary>
    public ServerOptions Validate()
    {
        var urls = Urls ?? [DefaultUrl];
        if (urls.Count == 0) throw new MambaADException("--urls is empty: give at least one address, e.g. http://127.0.0.1:5080");
        foreach (var url in urls) ValidateUrl(url);
        Check(MaxRequestBytes is >= 1 and <= 1L << 30, $"--max-request-bytes {MaxRequestBytes}: give a size from 1 to {1L << 30} bytes (the default is {20 * 1024 * 1024})");
        Check(MaxImageSide is >= 1 and <= 65535, $"--max-image-side {MaxImageSide}: give a side from 1 to 65535 pixels (the default is 8192)");
        Check(MaxImagePixels is >= 1 and <= 1L << 31, $"max image pixels {MaxImagePixels}: give from 1 to {1L << 31} pixels per request");
        Check(MaxBatchImages is >= 1 and <= 1024, $"max batch images {MaxBatchImages}: give from 1 to 1024 images per request");
        Check(MaxConcurrentRequests is >= 1 and <= 1024, $"--concurrency {MaxConcurrentRequests}: give from 1 to 1024 requests processed at once");
        Check(QueueLimit is >= 0 and <= 100_000, $"--queue {QueueLimit}: give from 0 to 100000 waiting requests (0: refuse whatever finds every slot taken)");
        if (RequestTimeout is { } t) TimeoutFromSeconds(t.TotalSeconds);
        Check(double.IsFinite(MinUploadBytesPerSecond) && MinUploadBytesPerSecond >= 0,
            $"--min-upload-rate {Show(MinUploadBytesPerSecond)}: give bytes per second, 0 or more (0 turns the check off)");
        Check(ImageThreshold is null || double.IsFinite(ImageThreshold.Value), $"--threshold {Show(ImageThreshold ?? 0)}: give a finite image score threshold, e.g. 0.5");
        if (Hosts.Count == 0) throw new MambaADException("--allowed-hosts is empty: give host names (e.g. localhost) or * for any host");
        foreach (var host in Hosts) ValidateHost(host);
        return this;
    }

    private static void Check(bool ok, string message)
    {
        if (!ok) throw new MambaADException(message);
    }

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// An http:// address with an explicit port that Kestrel binds exactly: an IP, localhost, or * / + for every
    /// interface. Kestrel would bind any other host name to every interface, which is not what a name like
    /// <c>myhost</c> promises, so it is refused.
    /// </summary>
    private static void ValidateUrl(string url)
    {
        var shown = ImageRequestReader.Clip(url);
        if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            throw new MambaADException($"--urls '{shown}': the server speaks plain HTTP; put TLS in a reverse proxy or ingress in front and listen on http://");
        var m = ListenAddress().Match(url);
        if (!m.Success || !int.TryParse(m.Groups["port"].Value, out int port) || port > 65535)
            throw new MambaADException($"--urls '{shown}' is not an address to listen on: give http://IP:PORT, http://localhost:PORT or http://*:PORT (port 0 picks a free one), ';'-separated");
        var host = m.Groups["host"].Value;
        bool ok = host is "*" or "+" || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (host.StartsWith('[') ? IPAddress.TryParse(host[1..^1], out _) : IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && host.Count(c => c == '.') == 3);
        if (!ok)
            throw new MambaADException($"--urls '{shown}': listen on an IP address, localhost or * (every interface), not '{ImageRequestReader.Clip(host)}'");
    }

    [GeneratedRegex(@"^http://(?<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]+):(?<port>[0-9]{1,5})/?$", RegexOptions.IgnoreCase)]
    private static partial Regex ListenAddress();

    /// <summary>A host name, an IP ([…] for IPv6), <c>*</c>, or <c>*.domain</c>; no scheme, port or path.</summary>
    private static void ValidateHost(string host)
    {
        string bare = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
        bool ok = host == "*"
            || (bare.StartsWith('[') && bare.EndsWith(']') && IPAddress.TryParse(bare[1..^1], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            || (bare.Length is > 0 and <= 253 && Uri.CheckHostName(bare) is UriHostNameType.Dns or UriHostNameType.IPv4);
        if (!ok)
            throw new MambaADException($"--allowed-hosts '{ImageRequestReader.Clip(host)}' is not a host name: give names like localhost, 127.0.0.1, [::1], *.example.com, or * for any host (no scheme or port)");
    }

    /// <summary>The allow-list in the form <see cref="Microsoft.AspNetCore.Http.HostString.MatchesAny"/> takes.</summary>
    internal IList<StringSegment> HostPatterns() => Hosts.Select(h => new StringSegment(h)).ToList();
}
