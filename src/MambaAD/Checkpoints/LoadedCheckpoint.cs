using MambaAD.Model;

namespace MambaAD.Checkpoints;

/// <summary>A model rebuilt from a checkpoint, with its description.</summary>
internal sealed record LoadedCheckpoint(MambaADModel Model, CheckpointInfo Info, string ModelPath) : IDisposable
{
    public void Dispose() => Model.Dispose();
}
