namespace MambaAD.Evaluation;

/// <summary>
/// The pixels of a class's maps counted in bins of the float32 order, in bounded memory: per bin, negative pixels,
/// positive pixels and the sum of the positives' region weights (1/area, for AU-PRO). A bin is one distinct float
/// value while the bins fit in <see cref="MemoryCap"/>; when they do not, neighbouring bins are merged (low bits of
/// the order key dropped, <see cref="Shift"/>) until they do. A histogram with Shift s holds exactly the maps rounded
/// down to 24 − s significant bits, so a metric computed from its bins is the exact metric of those rounded maps —
/// of the maps themselves while s is 0. The final Shift is the least that fits all values, whatever their order.
/// </summary>
/// <remarks>
/// Pixels are appended to small buffers; a full buffer is radix-sorted and merged into the sorted bin arrays (from
/// the back, in place), so the cost per pixel is a few array writes and no hashing.
/// </remarks>
internal sealed class PixelHistogram
{
    /// <summary>The default cap: 16 MiB per class, about 600,000 bins of which 440,000 hold values between merges.</summary>
    public const long DefaultMemoryCap = 16L << 20;

    private const int BinBytes = 4 + 8 + 8 + 8, MaxBuffer = 160 * 1024;

    // Bins take at most _capacity slots: _limit bins of values, and room to merge one buffer of _buffer pixels in.
    private readonly int _capacity, _limit, _buffer;

    // Sorted bins: _bins[i] is the order key >> Shift.
    private uint[] _bins = [];
    private long[] _neg = [], _pos = [];
    private double[] _weight = [];
    private int _count, _shift;
    // Pixels not merged yet (whole keys).
    private uint[]? _negBuffer, _posBuffer;
    private double[]? _posWeight;
    private int _negCount, _posCount;
    // Scratch for a flush, shared by the histograms of a thread (flushes of one thread never overlap).
    [ThreadStatic] private static uint[]? _runBins;
    [ThreadStatic] private static long[]? _runNeg, _runPos;
    [ThreadStatic] private static double[]? _runWeight;

    /// <summary>An empty histogram that keeps its bins within about <paramref name="memoryCap"/> bytes.</summary>
    public PixelHistogram(long memoryCap = DefaultMemoryCap)
    {
        if (memoryCap < 1024 * BinBytes) throw new ArgumentOutOfRangeException(nameof(memoryCap), memoryCap, "too small: at least 1024 bins");
        MemoryCap = memoryCap;
        _capacity = (int)Math.Min(memoryCap / BinBytes, Array.MaxLength);
        _buffer = Math.Min(MaxBuffer, _capacity / 4);
        _limit = _capacity - _buffer;
    }

    /// <summary>The memory the bins may take (bytes).</summary>
    public long MemoryCap { get; }

    /// <summary>Low bits of the order key dropped: 0 while every distinct value has its own bin.</summary>
    public int Shift
    {
        get { Flush(); return _shift; }
    }

    /// <summary>The relative rounding of a value into its bin: below 2^(Shift − 23); 0 when exact.</summary>
    public double Rounding => Shift == 0 ? 0 : Math.ScaleB(1, Shift - 23);

    /// <summary>Positive pixels counted.</summary>
    public long Positives { get; private set; }

    /// <summary>Negative pixels counted.</summary>
    public long Negatives { get; private set; }

    /// <summary>
    /// Counts one map: a pixel is positive where <paramref name="mask"/> is non-zero, and then adds
    /// <paramref name="regionWeight"/>[<paramref name="regions"/>[j]] (its region's weight) to its bin.
    /// </summary>
    public void Add(ReadOnlySpan<float> map, ReadOnlySpan<byte> mask, ReadOnlySpan<int> regions, ReadOnlySpan<double> regionWeight)
    {
        if (map.Length != mask.Length) throw new ArgumentException($"map has {map.Length} values but its mask {mask.Length}");
        // Positive pixels are the fewer (defects are small): a fifth of the buffer.
        var negBuffer = _negBuffer ??= new uint[_buffer - _buffer / 5];
        var posBuffer = _posBuffer ??= new uint[_buffer / 5];
        var posWeight = _posWeight ??= new double[_buffer / 5];
        int negCount = _negCount, posCount = _posCount;
        long positives = 0;
        for (int j = 0; j < map.Length; j++)
        {
            uint key = Key(map[j]);
            if (mask[j] != 0)
            {
                posBuffer[posCount] = key;
                posWeight[posCount++] = regionWeight[regions[j]];
                positives++;
            }
            else negBuffer[negCount++] = key;
            if (posCount == posBuffer.Length || negCount == negBuffer.Length)
            {
                (_negCount, _posCount) = (negCount, posCount);
                Flush();
                (negCount, posCount) = (0, 0);
            }
        }
        (_negCount, _posCount) = (negCount, posCount);
        Positives += positives;
        Negatives += map.Length - positives;
    }

    /// <summary>Merges what is buffered and lets the buffers go (adding again allocates them anew).</summary>
    public void Compact()
    {
        Flush();
        _negBuffer = _posBuffer = null;
        _posWeight = null;
    }

    /// <summary>One populated bin: its lowest value and what it holds.</summary>
    public readonly record struct Bin(float Value, long Neg, long Pos, double Weight);

    /// <summary>The populated bins in ascending order of value.</summary>
    public Bin[] Bins()
    {
        Flush();
        var bins = new Bin[_count];
        for (int i = 0; i < _count; i++) bins[i] = new Bin(Value(_bins[i] << _shift), _neg[i], _pos[i], _weight[i]);
        return bins;
    }

    /// <summary>The sum of several histograms (e.g. all classes, for calibration), at the coarsest of their resolutions.</summary>
    public static PixelHistogram Merge(IEnumerable<PixelHistogram> parts, long memoryCap = DefaultMemoryCap)
    {
        var merged = new PixelHistogram(memoryCap);
        var list = parts.ToList();
        foreach (var p in list) p.Flush();
        merged._shift = list.Count == 0 ? 0 : list.Max(p => p._shift);
        foreach (var part in list)
        {
            // The part's bins at the merged resolution: neighbours that fall into one bin are combined.
            int drop = merged._shift - part._shift, n = 0;
            var (bins, neg, pos, weight) = (new uint[part._count], new long[part._count], new long[part._count], new double[part._count]);
            for (int i = 0; i < part._count; i++)
            {
                uint bin = part._bins[i] >> drop;
                if (n == 0 || bins[n - 1] != bin) { bins[n] = bin; n++; }
                neg[n - 1] += part._neg[i];
                pos[n - 1] += part._pos[i];
                weight[n - 1] += part._weight[i];
            }
            merged.MergeSorted(bins, neg, pos, weight, n);
            merged.Positives += part.Positives;
            merged.Negatives += part.Negatives;
        }
        return merged;
    }

    /// <summary>
    /// An unsigned key with the order of the float (−0 and +0 share one): the key of the exact reference's radix sort
    /// (<see cref="Metrics"/>).
    /// </summary>
    internal static uint Key(float f)
    {
        if (float.IsNaN(f)) throw new ArgumentException("anomaly maps contain NaN");
        if (f == 0) f = 0;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }

    /// <summary>The float of a key (the inverse of <see cref="Key"/>).</summary>
    internal static float Value(uint key) =>
        BitConverter.UInt32BitsToSingle((key & 0x8000_0000u) != 0 ? key & 0x7FFF_FFFFu : ~key);

    /// <summary>Sorts the buffered pixels into bins and merges them in; then coarsens while over the cap.</summary>
    private void Flush()
    {
        if (_negCount == 0 && _posCount == 0) return;
        var (negBuffer, posBuffer, posWeight) = (_negBuffer!, _posBuffer!, _posWeight!);
        int negCount = _negCount, posCount = _posCount, shift = _shift;
        RadixSort.Sort(negBuffer, negCount, null);
        RadixSort.Sort(posBuffer, posCount, posWeight);
        // Run-length: the buffers as bins at the current Shift, merged between themselves.
        int n = 0, a = 0, b = 0, size = _negCount + _posCount;
        if (_runBins is null || _runBins.Length < size)
        {
            _runBins = new uint[Math.Max(size, MaxBuffer)];
            _runNeg = new long[_runBins.Length];
            _runPos = new long[_runBins.Length];
            _runWeight = new double[_runBins.Length];
        }
        var (bins, neg, pos, weight) = (_runBins, _runNeg!, _runPos!, _runWeight!);
        neg.AsSpan(0, size).Clear();
        pos.AsSpan(0, size).Clear();
        weight.AsSpan(0, size).Clear();
        while (a < negCount || b < posCount)
        {
            uint bin = b >= posCount || a < negCount && negBuffer[a] >> shift <= posBuffer[b] >> shift ? negBuffer[a] >> shift : posBuffer[b] >> shift;
            bins[n] = bin;
            while (a < negCount && negBuffer[a] >> shift == bin) { neg[n]++; a++; }
            while (b < posCount && posBuffer[b] >> shift == bin) { pos[n]++; weight[n] += posWeight[b]; b++; }
            n++;
        }
        _negCount = _posCount = 0;
        MergeSorted(bins, neg, pos, weight, n);
    }

    /// <summary>Merges sorted, distinct bins (at this Shift) into the bins, from the back and in place.</summary>
    private void MergeSorted(uint[] bins, long[] neg, long[] pos, double[] weight, int n)
    {
        int total = _count + n;
        if (total > _bins.Length)
        {
            // Doubling up to the cap (beyond it only when merging whole histograms, see Merge).
            int capacity = Math.Max(total, (int)Math.Min(_capacity, 2L * _bins.Length));
            Array.Resize(ref _bins, capacity);
            Array.Resize(ref _neg, capacity);
            Array.Resize(ref _pos, capacity);
            Array.Resize(ref _weight, capacity);
        }
        int i = _count - 1, j = n - 1, w = total;
        while (i >= 0 || j >= 0)
        {
            bool fromNew = i < 0 || j >= 0 && bins[j] >= _bins[i];
            uint bin = fromNew ? bins[j] : _bins[i];
            long ng = 0, ps = 0;
            double wt = 0;
            // Equal bins of both sides become one; the write position never overtakes the read position.
            if (i >= 0 && _bins[i] == bin) { ng += _neg[i]; ps += _pos[i]; wt += _weight[i]; i--; }
            if (j >= 0 && bins[j] == bin) { ng += neg[j]; ps += pos[j]; wt += weight[j]; j--; }
            w--;
            _bins[w] = bin; _neg[w] = ng; _pos[w] = ps; _weight[w] = wt;
        }
        _count = total - w;
        if (w > 0)
        {
            Array.Copy(_bins, w, _bins, 0, _count);
            Array.Copy(_neg, w, _neg, 0, _count);
            Array.Copy(_pos, w, _pos, 0, _count);
            Array.Copy(_weight, w, _weight, 0, _count);
        }
        // Over the limit: drop key bits until the bins fit. Only as many as the values so far need, which the whole set
        // needs too: the final Shift is the least at which all values fit, whatever their order.
        while (_count > _limit && _shift < 23) Coarsen();
    }

    /// <summary>One more key bit dropped: neighbouring bins merge, in place.</summary>
    private void Coarsen()
    {
        _shift++;
        int w = -1;
        for (int r = 0; r < _count; r++)
        {
            uint bin = _bins[r] >> 1;
            if (w >= 0 && _bins[w] == bin)
            {
                _neg[w] += _neg[r]; _pos[w] += _pos[r]; _weight[w] += _weight[r];
                continue;
            }
            w++;
            _bins[w] = bin; _neg[w] = _neg[r]; _pos[w] = _pos[r]; _weight[w] = _weight[r];
        }
        _count = w + 1;
    }
}
