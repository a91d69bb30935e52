using System.Diagnostics;
using MambaAD.Benchmarks;
using MambaAD.Model;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static MambaAD.Bench.BenchArgs;

namespace MambaAD.Bench;

/// <summary>
/// Where inference time goes, part by part, in one run: <c>dotnet run -c Release --project bench/MambaAD.Bench --
/// parts [--batch 8] [--reps 3] [--size 256] [--weights CHECKPOINT_DIR [--fresh]]</c>. Forward hooks time every module of interest (inclusive, wall
/// clock; CPU ops are synchronous) and count the multiply-accumulates of its Linear and Conv2d layers; the selective
/// scan is timed alone at each stage's shape. Each part's "bound" is its MACs at the encoder's own MAC rate measured in
/// the same run (for the scan: its port bound, <see cref="PortBound"/>), so "× bound" says how far each part is from
/// running as efficiently as the encoder (or the FMA ports). <c>--grad</c>: the same for the training forward (train
/// mode, autograd recording), without the anomaly map, and each part's backward of the training loss, timed by
/// <see cref="BackwardMarker"/>s on the parts' inputs and outputs (its bound: twice the forward's MACs, the input's and
/// the weights' gradients, at the encoder's forward rate; the scan's backward alone at each stage's shape).
/// </summary>
internal static class ModelParts
{
    private sealed class Part
    {
        public double Ms;
        public double Macs;
    }

    public static int Run(string[] args)
    {
        int batch = int.Parse(Opt(args, "--batch", "8")), reps = int.Parse(Opt(args, "--reps", "3"));
        int size = int.Parse(Opt(args, "--size", "256"));
        manual_seed(0);   // the fresh model's initialisation
        var model = LoadOrCreate(Opt(args, "--weights", ""), args.Contains("--fresh"), size);
        if (args.Contains("--train")) return Train(model, int.Parse(Opt(args, "--batch", "16")), reps, !args.Contains("--keep-heap"));
        using var owned = model;   // Train disposes it on its own path
        // --grad: the training forward (train mode, autograd recording) by part, without the anomaly map.
        bool grad = args.Contains("--grad");
        model.train(grad);
        using var x = randn(batch, 3, size, size);
        var parts = new Dictionary<string, Part>();
        var starts = new Dictionary<nn.Module, long>();
        var hooks = new List<Action>();   // removers
        bool counting = false, marking = false;
        var inMarks = new Dictionary<nn.Module, int>();
        var calls = new List<(string Name, int In, int Out)>();   // marker ids of each part's call (−1: input needs no gradient)

        void Time<T, TR>(nn.Module<T, TR> m, string name)
        {
            var pre = m.register_forward_pre_hook((mod, input) =>
            {
                starts[mod] = Stopwatch.GetTimestamp();
                inMarks[mod] = -1;
                if (!marking || input is not Tensor t || !t.requires_grad) return input;
                inMarks[mod] = calls.Count * 2;
                return (T)(object)BackwardMarker.Mark(t, calls.Count * 2);
            });
            var post = m.register_forward_hook((mod, input, output) =>
            {
                if (counting) Get(name).Ms += Stopwatch.GetElapsedTime(starts[mod]).TotalMilliseconds;
                if (!marking || output is not Tensor t) return output;
                int id = calls.Count * 2 + 1;
                calls.Add((name, inMarks[mod], id));
                return (TR)(object)BackwardMarker.Mark(t, id);
            });
            hooks.Add(() => { pre.remove(); post.remove(); });
        }
        void CountMacs(nn.Module<Tensor, Tensor> m, string name)
        {
            var post = m.register_forward_hook((mod, input, output) =>
            {
                if (!counting) return output;
                double macs = mod switch
                {
                    Linear l => (double)l.weight!.shape[0] * l.weight.shape[1] * (input.numel() / input.shape[^1]),
                    Conv2d c => (double)c.weight!.numel() * output.shape[2] * output.shape[3] * output.shape[0],
                    // in_proj and x_proj run as functional calls (no module hook): T·C·2d + T·d·K(R + 2N).
                    Ss2d s => (double)(input.numel() / s.DModel) * (s.DModel * 2 * s.DInner + s.DInner * s.Directions * (s.DtRank + 2 * s.DState)),
                    _ => 0,
                };
                Get(name).Macs += macs;
                return output;
            });
            hooks.Add(post.remove);
        }
        Part Get(string name) => parts.TryGetValue(name, out var p) ? p : parts[name] = new Part();

        Time(model.Encoder, "encoder");
        foreach (var m in model.Encoder.modules().OfType<Conv2d>()) CountMacs(m, "encoder");
        Time(model.Bottleneck, "bottleneck (MFF_OCE)");
        foreach (var m in model.Bottleneck.modules().OfType<Conv2d>()) CountMacs(m, "bottleneck (MFF_OCE)");
        // By type and state_dict name, not through accessors: the modules' own fields stay private.
        foreach (var up in model.Decoder.modules().OfType<PatchExpand2D>())
        {
            Time(up, "PatchExpand2D");
            foreach (var l in up.modules().OfType<Linear>()) CountMacs(l, "PatchExpand2D");
        }
        foreach (var lssModule in model.Decoder.modules().OfType<LssModule>())
        {
            // The local branches and finalconv11 run their convs as functions (no module call for a hook to see), all at
            // stride 1 on the module's map: per pixel, the sum of their weights' sizes. Timed as the LSS module minus its
            // HSS blocks.
            long perPixel = lssModule.named_children().Where(c => c.module is not ModuleList<HssBlock>)
                .SelectMany(c => c.module.modules().Prepend(c.module)).OfType<Conv2d>().Sum(c => c.weight!.numel());
            var post = lssModule.register_forward_hook((mod, input, output) =>
            {
                if (counting) Get("LSS local branches and finalconv11").Macs += (double)perPixel * (input.numel() / input.shape[^1]);
                return output;
            });
            hooks.Add(post.remove);
            Time(lssModule, "LSS module (all)");
        }
        foreach (var hss in model.Decoder.modules().OfType<HssBlock>())
        {
            Time(hss, "HSS block (all)");
            foreach (var (name, child) in hss.named_children())
            {
                if (child is Ss2d core)
                {
                    Time(core, "SS2D (incl. scan)");
                    CountMacs(core, "SS2D (incl. scan)");
                    foreach (var l in core.modules().OfType<Linear>()) CountMacs(l, "SS2D (incl. scan)");
                    foreach (var c in core.modules().OfType<Conv2d>()) CountMacs(c, "SS2D (incl. scan)");
                }
            }
        }

        // Warm-up, then whole forward (timed by hooks) and Predict (forward + anomaly map) alternately.
        if (grad) { using (NewDisposeScope()) model.call(x); }
        else _ = model.Predict(x);
        double predictMs = double.MaxValue, forwardMs = double.MaxValue;
        var best = new Dictionary<string, Part>();
        for (int r = 0; r < reps; r++)
        {
            foreach (var p in parts.Values) { p.Ms = 0; p.Macs = 0; }
            counting = true;
            var sw = Stopwatch.StartNew();
            using (set_grad_enabled(grad)) using (NewDisposeScope()) model.call(x);
            double fwd = sw.Elapsed.TotalMilliseconds;
            counting = false;
            if (fwd < forwardMs)
            {
                forwardMs = fwd;
                best = parts.ToDictionary(e => e.Key, e => new Part { Ms = e.Value.Ms, Macs = e.Value.Macs });
            }
            if (grad) { predictMs = forwardMs; continue; }
            sw.Restart();
            using (NewDisposeScope()) _ = model.Predict(x);
            predictMs = Math.Min(predictMs, sw.Elapsed.TotalMilliseconds);
        }
        // --grad: the loss's backward by part, from the markers' timestamps (a part whose input needs no gradient, the
        // bottleneck, ends with the backward).
        var bwd = new Dictionary<string, double>();
        double backwardMs = double.MaxValue;
        for (int r = 0; grad && r < reps; r++)
        {
            using var scope = NewDisposeScope();
            model.zero_grad();
            calls.Clear(); BackwardMarker.Reached.Clear();
            marking = true;
            var loss = model.Loss(x);
            marking = false;
            long t0 = Stopwatch.GetTimestamp();
            loss.backward();
            long t1 = Stopwatch.GetTimestamp();
            double total = Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
            if (total >= backwardMs) continue;
            backwardMs = total;
            bwd.Clear();
            foreach (var (name, inId, outId) in calls)
            {
                if (!BackwardMarker.Reached.TryGetValue(outId, out long start)) continue;
                long end = inId >= 0 && BackwardMarker.Reached.TryGetValue(inId, out long e) ? e : t1;
                bwd[name] = bwd.GetValueOrDefault(name) + Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
            }
        }
        foreach (var remove in hooks) remove();

        // The anomaly map timed directly on one forward's features (a difference of two noisy wall times can go negative).
        double rawMs = double.NaN, smoothMs = double.NaN;
        if (!grad)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (f, d) = model.forward(x);
            rawMs = smoothMs = double.MaxValue;
            for (int r = 0; r < reps; r++)
            {
                var sw = Stopwatch.StartNew();
                using var raw = AnomalyMap.Raw(f, d, size);
                rawMs = Math.Min(rawMs, sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                _ = AnomalyMap.Smooth(raw);
                smoothMs = Math.Min(smoothMs, sw.Elapsed.TotalMilliseconds);
            }
        }

        // The scan alone at each decoder stage's shape.
        double scanMs = 0, scanBoundMs = 0;
        int width = ScanKernels.HardwareWidth;
        double fmaPerNs = width >= 8 ? PortBound.FmaPerNs(width) : double.NaN;
        foreach (var stage in ScanStage.All(model))
        {
            var (l, d, r, blocks) = (stage.L, stage.D, stage.R, stage.Blocks);
            using var scope = NewDisposeScope();
            var xp = ScanSampleInputs.CreateProjected(batch, 8, d, 16, l, r);
            var paths = stage.Paths(model.Config.Scan);
            double bestMs = double.MaxValue;
            for (int k = 0; k <= reps; k++)
            {
                var sw = Stopwatch.StartNew();
                using (no_grad()) SelectiveScanCpu.Instance.ScanAndMergeProjected(xp[0], xp[1], xp[2], xp[3], xp[4], xp[5], paths).Dispose();
                if (k > 0) bestMs = Math.Min(bestMs, sw.Elapsed.TotalMilliseconds);
            }
            scanMs += blocks * bestMs;
            if (width >= 8) scanBoundMs += blocks * PortBound.NsPerStep(width, r, fmaPerNs) * batch * 8.0 * d * l / 1e6;
        }

        double scanBwdMs = grad ? ScanWithGrad(model, batch, reps).Backward : double.NaN;

        double encMacsPerMs = best["encoder"].Macs / best["encoder"].Ms;
        double perImage(double ms) => ms / batch;
        Console.WriteLine($"MambaAD {(grad ? "training forward (autograd) and backward" : "inference")} by part: batch {batch}, {size}², {get_num_threads()} threads, width {width}, best of {reps} (wall clock; machine shared)");
        Console.WriteLine($"GEMMs: {MambaAD.Util.MklVendorCheck.State}; native ISA: {MambaAD.Util.NativeIsaLimit.State}");
        Console.WriteLine($"{"part",-38} {"ms/img",8} {"share",6} {"GMAC/img",9} {"bound ms",9} {"× bound",8}" +
                          (grad ? $" {"bwd ms/img",10} {"× bound",8}" : ""));
        string Ratio(double ms, double boundMs) => double.IsNaN(boundMs) || double.IsNaN(ms) ? "" : (ms / boundMs).ToString("F2");
        void Row(string name, double ms, double macs, double boundMs, double bwdMs = double.NaN, double bwdBoundMs = double.NaN) =>
            Console.WriteLine($"{name,-38} {perImage(ms),8:F1} {ms / predictMs * 100,5:F0}% {macs / batch / 1e9,9:F2} " +
                              $"{(double.IsNaN(boundMs) ? "" : perImage(boundMs).ToString("F1")),9} {Ratio(ms, boundMs),8}" +
                              (grad ? $" {(double.IsNaN(bwdMs) ? "" : perImage(bwdMs).ToString("F1")),10} {Ratio(bwdMs, bwdBoundMs),8}" : ""));
        double Bound(Part p) => p.Macs > 0 ? p.Macs / encMacsPerMs : double.NaN;
        var b = best;
        Part P(string name) => b.TryGetValue(name, out var p) ? p : new Part();
        double B(string name) => bwd.TryGetValue(name, out var ms) ? ms : double.NaN;
        double ss2d = P("SS2D (incl. scan)").Ms, lss = P("LSS module (all)").Ms, hssAll = P("HSS block (all)").Ms;
        double pe = P("PatchExpand2D").Ms;
        Row("encoder", P("encoder").Ms, P("encoder").Macs, Bound(P("encoder")));
        Row("bottleneck (MFF_OCE)", P("bottleneck (MFF_OCE)").Ms, P("bottleneck (MFF_OCE)").Macs, Bound(P("bottleneck (MFF_OCE)")),
            B("bottleneck (MFF_OCE)"), 2 * Bound(P("bottleneck (MFF_OCE)")));
        Row("  scan (ScanAndMergeProjected)", scanMs, 0, width >= 8 ? scanBoundMs : double.NaN, scanBwdMs);
        var ssP = P("SS2D (incl. scan)");
        Row("  SS2D without scan (proj, conv, norm)", ss2d - scanMs, ssP.Macs, ssP.Macs / encMacsPerMs,
            B("SS2D (incl. scan)") - scanBwdMs, 2 * ssP.Macs / encMacsPerMs);
        Row("  HSS ln_1, residual", hssAll - ss2d, 0, double.NaN, B("HSS block (all)") - B("SS2D (incl. scan)"));
        var localP = P("LSS local branches and finalconv11");
        Row("  LSS local branches, finalconv11", lss - hssAll, localP.Macs, Bound(localP),
            B("LSS module (all)") - B("HSS block (all)"), 2 * Bound(localP));
        if (pe > 0) Row("  PatchExpand2D", pe, P("PatchExpand2D").Macs, Bound(P("PatchExpand2D")), B("PatchExpand2D"), 2 * Bound(P("PatchExpand2D")));
        double decoder = forwardMs - b["encoder"].Ms - b["bottleneck (MFF_OCE)"].Ms;
        Row("decoder (all of the above)", decoder, 0, double.NaN, backwardMs - B("bottleneck (MFF_OCE)"));
        if (!grad)
        {
            Row("anomaly map: 1 − cos, resize, sum", rawMs, 0, double.NaN);
            Row("anomaly map: Gaussian σ 4, max", smoothMs, 0, double.NaN);
        }
        Row(grad ? "whole model (forward; backward of the loss)" : "whole model + map", predictMs, 0, double.NaN, backwardMs);
        Console.WriteLine($"encoder rate {encMacsPerMs / 1e6:F1} GMAC/s; scan port bound from {fmaPerNs:F2} FMA/ns; ratio model ÷ encoder {predictMs / b["encoder"].Ms:F2}");
        return 0;
    }

    /// <summary>
    /// <c>parts --train</c>: one training step split into forward (with autograd), backward and the optimizer step, and
    /// the scan's own forward (saving states) and backward at every stage's shape, best of reps, same batch; the peak RSS
    /// of the timed steps, with the heap trimmed after each step as the trainer does (<c>--keep-heap</c>: not trimmed).
    /// </summary>
    private static int Train(MambaADModel model, int batch, int reps, bool trim)
    {
        using var _ = model;
        int size = model.Config.ImageSize;
        model.train();
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = optim.AdamW(trainable, 0.005);
        using var x = randn(batch, 3, size, size);
        double fwd = double.MaxValue, bwd = double.MaxValue, opt = double.MaxValue, startMb = 0, afterForwardMb = 0;
        double lastFaults = PeakRss.MinorFaults();
        for (int r = 0; r <= reps; r++)
        {
            if (r == 1) { PeakRss.Reset(); startMb = PeakRss.CurrentMegabytes(); }   // after the warm-up step, which allocates the optimizer state
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var sw = Stopwatch.StartNew();
            var loss = model.Loss(x);
            double f = sw.Elapsed.TotalMilliseconds;
            if (r == 1) afterForwardMb = PeakRss.CurrentMegabytes();
            sw.Restart();
            loss.backward();
            double b = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            nn.utils.clip_grad_norm_(trainable, 5.0);
            optimizer.step();
            if (trim) { scope.Dispose(); HeapTrim.Run(); }   // as the trainer does
            double o = sw.Elapsed.TotalMilliseconds;
            double faults = PeakRss.MinorFaults();
            Console.WriteLine($"  step {r}: {(f + b + o) / batch:F1} ms/img, RSS after {PeakRss.CurrentMegabytes():F0} MB, " +
                              $"{faults - lastFaults:F0} minor faults");
            lastFaults = faults;
            if (r == 0) continue;
            fwd = Math.Min(fwd, f); bwd = Math.Min(bwd, b); opt = Math.Min(opt, o);
        }
        double peakMb = PeakRss.Megabytes();
        var (scanF, scanB) = ScanWithGrad(model, batch, reps);
        double total = fwd + bwd + opt;
        Console.WriteLine($"MambaAD training step by part: batch {batch}, {size}², {get_num_threads()} threads, width {ScanKernels.HardwareWidth}, best of {reps} (machine shared)");
        Console.WriteLine($"  forward (autograd)     {fwd / batch,8:F1} ms/img  (scan fwd saving states {scanF / batch:F1})");
        Console.WriteLine($"  backward               {bwd / batch,8:F1} ms/img  (scan bwd {scanB / batch:F1})");
        Console.WriteLine($"  clip + AdamW step      {opt / batch,8:F1} ms/img");
        Console.WriteLine($"  step                   {total / batch,8:F1} ms/img; scan {(scanF + scanB) / total * 100:F0} % of it");
        Console.WriteLine($"  peak RSS of the steps  {peakMb,8:F0} MB (RSS {startMb:F0} MB before a step, {afterForwardMb:F0} MB after its forward)");
        return 0;
    }

    /// <summary>
    /// The scan's forward (saving states) and backward at every decoder stage's shape (sample inputs, the model's scan
    /// method), times the stage's blocks, best of reps each: ms for the whole decoder at this batch.
    /// </summary>
    private static (double Forward, double Backward) ScanWithGrad(MambaADModel model, int batch, int reps)
    {
        double scanF = 0, scanB = 0;
        foreach (var stage in ScanStage.All(model))
        {
            using var scope = NewDisposeScope();
            var leaves = ScanSampleInputs.CreateProjected(batch, 8, stage.D, 16, stage.L, stage.R)
                .Select(t => t.requires_grad_(true)).ToArray();
            var paths = stage.Paths(model.Config.Scan);
            double bf = double.MaxValue, bb = double.MaxValue;
            for (int k = 0; k <= reps; k++)
            {
                using var inner = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                var y = SelectiveScanCpu.Instance.ScanAndMergeProjected(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], paths);
                double f = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                y.backward([ones_like(y)]);
                double b = sw.Elapsed.TotalMilliseconds;
                foreach (var t in leaves) { t.grad?.Dispose(); t.grad = null; }
                if (k == 0) continue;
                bf = Math.Min(bf, f); bb = Math.Min(bb, b);
            }
            scanF += stage.Blocks * bf; scanB += stage.Blocks * bb;
        }
        return (scanF, scanB);
    }

    /// <summary>
    /// The scan's shape at each decoder stage (stage i: side 8·2^i at 256², so L = side², d_inner 2·dims[i], R =
    /// ⌈dims[i]/16⌉) and the stage's block count, for timing the scan alone on sample inputs.
    /// </summary>
    private readonly record struct ScanStage(int Side, int D, int R, int Blocks)
    {
        public int L => Side * Side;

        public static IEnumerable<ScanStage> All(MambaADModel model) => Enumerable.Range(0, 4).Select(i =>
            new ScanStage((model.Config.ImageSize / 32) << i, (int)(2 * MambaDecoder.Dims[i]),
                (int)((MambaDecoder.Dims[i] + 15) / 16), model.Config.Depths[i]));

        /// <summary>The 8 direction paths of <paramref name="scan"/> over the stage, (8, L) int64.</summary>
        public Tensor Paths(ScanType scan) => PathTensors.Get(scan, Side, 8);
    }

    /// <summary>
    /// <c>--weights DIR</c>: a trained checkpoint (its activations, not random ones: subnormal states cost time, see
    /// Ssm/FlushToZero); with <c>--fresh</c>, its config with new weights. The scan row stays on sample inputs.
    /// </summary>
    private static MambaADModel LoadOrCreate(string weights, bool fresh, int size)
    {
        if (weights.Length == 0) return new MambaADModel(new MambaADConfig { ImageSize = size });
        var loaded = MambaAD.Checkpoints.Checkpoint.Load(weights);
        if (!fresh) return loaded.Model;
        var config = loaded.Model.Config;
        loaded.Dispose();
        return new MambaADModel(config);
    }
}
