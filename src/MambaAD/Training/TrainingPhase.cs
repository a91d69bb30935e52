namespace MambaAD.Training;

/// <summary>What a <see cref="TrainingProgress"/> report is about.</summary>
public enum TrainingPhase
{
    /// <summary>An optimizer step (or a change of the plan under a time budget).</summary>
    Train,

    /// <summary>A test during training: its start, then its metrics.</summary>
    Test,

    /// <summary>A checkpoint was written.</summary>
    Checkpoint,

    /// <summary>Training is over.</summary>
    Done,

    /// <summary>Something the user should know that does not stop the run (a skipped file, a recovered save).</summary>
    Warning,
}
