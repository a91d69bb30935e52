using Microsoft.AspNetCore.Http;

namespace MambaAD.Server;

/// <summary>
/// Refuses requests addressed to a host name the server was not given (<see cref="ServerOptions.AllowedHosts"/>): a web
/// page that rebinds its own DNS name to 127.0.0.1 sends <c>Host: its-name</c>, gets 421 and cannot read the answers of
/// a local server. A browser <c>Origin</c> whose host is not allowed gets 403: without it a page could still make the
/// server work blindly with a cross-site form POST (multipart needs no CORS preflight). Clients that are not browsers
/// send no Origin and are unaffected. <c>*</c> turns both checks off (behind an ingress that checks names itself).
/// </summary>
internal static class HostFilter
{
    public static Func<HttpContext, RequestDelegate, Task> Create(ServerOptions o)
    {
        if (o.AllowsAnyHost) return (ctx, next) => next(ctx);
        var patterns = o.HostPatterns();
        return (ctx, next) =>
        {
            var host = ctx.Request.Host;
            if (!host.HasValue || !HostString.MatchesAny(host.Value, patterns))
                return InferenceServer.WriteError(ctx, StatusCodes.Status421MisdirectedRequest,
                    $"this server does not answer to the host '{ImageRequestReader.Clip(host.Value ?? "")}'; address it as {string.Join(", ", o.Hosts)} (or start it with --allowed-hosts)");
            var origin = ctx.Request.Headers.Origin.ToString();
            if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                                       && HostString.MatchesAny(new HostString(uri.Authority).Value, patterns)))
                return InferenceServer.WriteError(ctx, StatusCodes.Status403Forbidden,
                    $"requests from web pages of origin '{ImageRequestReader.Clip(origin)}' are refused; the allowed hosts are {string.Join(", ", o.Hosts)} (--allowed-hosts)");
            return next(ctx);
        };
    }
}
