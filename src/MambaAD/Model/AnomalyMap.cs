using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// Anomaly map and image score (spec §12): per scale 1 − cos(F_s, D_s) over channels (PyTorch cosine, eps 1e-8) →
/// bilinear resize to the image size with align_corners → sum / 9 → Gaussian σ 4 (scipy reflect, float64) → score = max.
/// </summary>
internal static class AnomalyMap
{
    /// <summary>The Gaussian σ of the post-filter.</summary>
    public const double Sigma = 4.0;

    /// <summary>
    /// Steps 1–3: the raw map (B, S, S) before smoothing. The divisor 9 is the official (number of scales × sum of
    /// weights), with 3 scales of weight 1; it changes no metric (§12 step 3).
    /// </summary>
    public static Tensor Raw(IReadOnlyList<Tensor> encoder, IReadOnlyList<Tensor> decoder, int size)
    {
        if (encoder.Count != decoder.Count) throw new ArgumentException("encoder and decoder feature lists differ in length");
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        for (int s = 0; s < encoder.Count; s++)
        {
            // Both channels-last (the decoder's already are): libtorch's reduction over the channels then runs along
            // contiguous memory, 5–10 × faster than over NCHW's strided channels even with the encoder's copy
            // (docs/performance.md, "Issue 14, phase 20"); the sums' order, so the last bits, differ from NCHW's.
            var m = 1 - nn.functional.cosine_similarity(TensorMemory.ChannelsLast(encoder[s]), TensorMemory.ChannelsLast(decoder[s]), dim: 1, eps: 1e-8);   // (B, H_s, W_s)
            var up = nn.functional.interpolate(m.unsqueeze(1), size: [size, size], mode: InterpolationMode.Bilinear,
                align_corners: true);
            sum = sum is null ? up : sum + up;
        }
        var raw = (sum! / (encoder.Count * 3.0)).squeeze(1);
        return raw.MoveToOuterDisposeScope();
    }

    /// <summary>Steps 4–5: smooth each map in float64 and take its max, one map per task on the kernels' workers
    /// (ScanWorkers: their flush-to-zero cannot touch these values, all far above float64's subnormals). Returns
    /// float32 maps as arrays.</summary>
    public static unsafe AnomalyMaps Smooth(Tensor raw)
    {
        long b = raw.shape[0];
        int h = (int)raw.shape[1], w = (int)raw.shape[2];
        using var cpu = raw.detach().to(float64).cpu().contiguous();
        // Read through the tensor's memory: TensorAccessor's ToArray copied element by element, on one thread.
        var all = new ReadOnlySpan<double>(TensorMemory.Doubles(cpu), checked((int)cpu.numel())).ToArray();
        var scores = new float[b];
        var maps = new float[all.Length];
        ScanWorkers.Run((int)b, 0, (i, _) =>
        {
            var map = all.AsSpan(i * h * w, h * w);
            GaussianFilter.Apply(map, h, w, Sigma);
            var map32 = maps.AsSpan(i * h * w, h * w);
            float max = float.NegativeInfinity;
            for (int j = 0; j < map.Length; j++) max = Math.Max(max, map32[j] = (float)map[j]);
            scores[i] = max;
        });
        return new AnomalyMaps(maps, scores, h, w);
    }

    /// <summary>The whole of §12 for one batch.</summary>
    public static AnomalyMaps Compute(IReadOnlyList<Tensor> encoder, IReadOnlyList<Tensor> decoder, int size)
    {
        using var raw = Raw(encoder, decoder, size);
        return Smooth(raw);
    }
}
