namespace MambaAD.Server;

/// <summary>The stages of a prediction request, in order; a 504 names the one the deadline fell in.</summary>
internal enum Stage { Upload, Queue, Decode, Forward, Response }

/// <summary>
/// A test seam: <see cref="Entering"/> is awaited as a request enters each stage after the upload (and, for
/// <see cref="Stage.Forward"/>, after each sub-batch of the forward), with the request's deadline token. Tests use it
/// to hold a request in a stage until its deadline passes, so that a timeout in any stage is provoked without
/// depending on how fast this machine is. Null in production.
/// </summary>
internal sealed class ServerHooks
{
    public Func<Stage, CancellationToken, Task>? Entering { get; init; }
}
