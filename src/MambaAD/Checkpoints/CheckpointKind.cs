namespace MambaAD.Checkpoints;

/// <summary>The two checkpoints of a run folder (<see cref="RunFolder"/>).</summary>
public enum CheckpointKind
{
    /// <summary>The latest state, with the optimizer and RNG state for resuming: <c>RUN/last</c>.</summary>
    Last,

    /// <summary>The highest mean mAD at a test during training: <c>RUN/best</c>.</summary>
    Best,
}
