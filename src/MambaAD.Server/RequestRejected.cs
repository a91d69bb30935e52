namespace MambaAD.Server;

/// <summary>A request the server refuses, with the HTTP status and a one-line reason sent back as JSON <c>{"error": …}</c>.</summary>
internal sealed class RequestRejected(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
