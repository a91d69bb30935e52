namespace MambaAD.Ssm;

/// <summary>The five scan methods of Hybrid Scanning (spec §8.1). One method per model.</summary>
public enum ScanType
{
    /// <summary>Raster order: row by row, each left to right.</summary>
    Sweep,

    /// <summary>Snake order: even rows left to right, odd rows right to left.</summary>
    Scan,

    /// <summary>The Z-order (Morton) curve.</summary>
    Zorder,

    /// <summary>Along the anti-diagonals, alternating direction.</summary>
    Zigzag,

    /// <summary>The Hilbert curve: the paper's choice.</summary>
    Hilbert,
}
