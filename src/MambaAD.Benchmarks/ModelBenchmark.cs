using System.Diagnostics;
using MambaAD.Encoders;
using MambaAD.Model;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Benchmarks;

/// <summary>What <see cref="ModelBenchmark.Run"/> measures (all in one process, one run, so ratios are fair).</summary>
/// <param name="Backbone">The encoder measured.</param>
/// <param name="ImageSize">Input side.</param>
/// <param name="Batch">Inference batch.</param>
/// <param name="TrainBatch">Training batch.</param>
/// <param name="EncoderMsPerImage">Encoder alone, inference.</param>
/// <param name="ModelMsPerImage">Encoder + MFF_OCE + decoder + anomaly map (§12), inference.</param>
/// <param name="Ratio">Model ÷ encoder.</param>
/// <param name="ScanNsPerStep">Selective scan per (batch, direction, channel, time) step at the largest stage (S = image/4, d_inner 128, K = 8, N = 16), forward.</param>
/// <param name="ScanPortBoundNs">The same step's port bound on this machine (<see cref="PortBound"/>), measured alternately with
/// the kernel; NaN for the scalar kernel, whose operations are not counted.</param>
/// <param name="KernelWidth">The scan kernel's vector lanes (16, 8 or 1 for scalar).</param>
/// <param name="TrainMsPerImage">Forward + backward + AdamW step at the training batch.</param>
/// <param name="TrainPeakRssMb">Peak resident memory during the training steps.</param>
/// <param name="TrainRatio">Training ms per image ÷ inference (whole model + map) ms per image, the two timed
/// alternately, step after pass, so that both see the same machine conditions.</param>
/// <param name="TrainCachedMsPerImage">The training step from kept encoder features (the trainer's cache, every epoch
/// after the first when the features fit), timed alternately with the other two.</param>
/// <param name="TrainCachedRatio">That step ÷ inference ms per image.</param>
/// <param name="Threads">libtorch threads.</param>
/// <param name="ProcessorCount">Logical processors of the machine.</param>
/// <param name="Scan">The scan method of the model measured.</param>
public sealed record BenchResult(string Backbone, int ImageSize, int Batch, int TrainBatch, double EncoderMsPerImage,
    double ModelMsPerImage, double Ratio, double ScanNsPerStep, double ScanPortBoundNs, int KernelWidth, double TrainMsPerImage,
    double TrainPeakRssMb, double TrainRatio, double TrainCachedMsPerImage, double TrainCachedRatio, int Threads, int ProcessorCount, string Scan)
{
    /// <summary>The scan ÷ its port bound (issue 14's target ≤ 1.3 at 8 and at 16 lanes).</summary>
    public double ScanTimesBound => ScanNsPerStep / ScanPortBoundNs;
}

/// <summary>One round of <see cref="ModelBenchmark.TrainingRounds"/>, ms per image of each.</summary>
/// <param name="StepMsPerImage">A training step from the images (encoder included).</param>
/// <param name="CachedStepMsPerImage">A training step from kept encoder features.</param>
/// <param name="InferenceMsPerImage">An inference pass (whole model + anomaly map).</param>
public readonly record struct TrainingRound(double StepMsPerImage, double CachedStepMsPerImage, double InferenceMsPerImage)
{
    /// <summary>The step from the images ÷ the inference pass.</summary>
    public double StepRatio => StepMsPerImage / InferenceMsPerImage;

    /// <summary>The step from kept features ÷ the inference pass.</summary>
    public double CachedStepRatio => CachedStepMsPerImage / InferenceMsPerImage;
}

/// <summary>
/// The whole-model benchmark behind <c>mambaad bench</c> (issue 14's targets: ratio ≤ 3.5, training ≤ 2.5 × inference
/// per image, peak RSS ≤ 6 GB, the scan ≤ 1.3 × its port bound). Weights are random: speed does not depend on them.
/// </summary>
public static class ModelBenchmark
{
    public static BenchResult Run(Backbone backbone = Backbone.ResNet34, int imageSize = 256, int batch = 8, int trainBatch = 16,
        int repeats = 5, Action<string>? log = null)
    {
        using var model = RandomModel(backbone, imageSize);
        using var x = randn(batch, 3, imageSize, imageSize);

        log?.Invoke($"encoder alone and whole model + anomaly map, batch {batch}, interleaved…");
        var (encoderMs, wholeMs) = TimeInterleaved(repeats,
            () => { using var _ = no_grad(); using var s = NewDisposeScope(); model.Encoder.call(x); },
            () => { using var s = NewDisposeScope(); model.Predict(x); });
        double encoder = encoderMs / batch, whole = wholeMs / batch;
        log?.Invoke("selective scan at the largest stage…");
        var (scanNs, boundNs) = ScanNsPerStep(batch, imageSize / 4, repeats);
        log?.Invoke($"training step, batch {trainBatch}…");
        var (rounds, peakMb) = Train(model, x, trainBatch, imageSize, Math.Clamp(repeats, 2, 3));   // a step is ~4 s: noise averages within it
        // Best of each, as for inference: load only ever adds time.
        double trainMs = rounds.Min(r => r.StepMsPerImage), cachedMs = rounds.Min(r => r.CachedStepMsPerImage);
        double inferenceMs = rounds.Min(r => r.InferenceMsPerImage);
        return new BenchResult(EncoderDescriptor.Of(backbone).Name, imageSize, batch, trainBatch, encoder, whole, whole / encoder, scanNs, boundNs, ScanKernels.HardwareWidth, trainMs, peakMb,
            trainMs / inferenceMs, cachedMs, cachedMs / inferenceMs, get_num_threads(), Environment.ProcessorCount, ScanOrder.Name(model.Config.Scan));
    }

    /// <summary>The measured model: random weights (speed does not depend on them) from seed 0, in eval mode.</summary>
    private static MambaADModel RandomModel(Backbone backbone, int imageSize)
    {
        manual_seed(0);
        var model = new MambaADModel(new MambaADConfig { Backbone = backbone, ImageSize = imageSize });
        model.eval();
        return model;
    }

    /// <summary>
    /// Best wall times in ms of two actions run alternately <paramref name="repeats"/> times after one warm-up of each, so
    /// that both see the same machine conditions. The best, not the median: on a shared machine other tenants only ever
    /// add time (the median of one run swung ±25 % between runs here), and a ratio of two bests compares the code, not the
    /// neighbours.
    /// </summary>
    private static (double A, double B) TimeInterleaved(int repeats, Action a, Action b)
    {
        a();
        b();
        double bestA = double.MaxValue, bestB = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            bestA = Math.Min(bestA, Ms(a));
            bestB = Math.Min(bestB, Ms(b));
        }
        return (bestA, bestB);
    }

    private static double Ms(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// The model exported to ONNX (issue 12) in ONNX Runtime with libtorch's thread count, against TorchSharp's
    /// <see cref="MambaADModel.Predict"/> on the same input, alternating as <see cref="TimeInterleaved"/>: ms per image of each.
    /// </summary>
    public static (double TorchMsPerImage, double OnnxRuntimeMsPerImage) OnnxRuntimeVersusTorch(Backbone backbone = Backbone.ResNet34,
        int imageSize = 256, int batch = 8, int repeats = 5, Onnx.OnnxExportOptions? options = null)
    {
        using var model = RandomModel(backbone, imageSize);
        var path = Path.Combine(Path.GetTempPath(), $"mambaad-bench-{Environment.ProcessId}.onnx");
        var info = new Checkpoints.CheckpointInfo(Checkpoints.CheckpointInfo.CurrentFormat, model.Config, "random",
            Imaging.InputNormalization.ImageNet, [], null, null, DateTime.UtcNow.ToString("O"));
        try
        {
            Onnx.OnnxExport.Export(model, info, path, options ?? new Onnx.OnnxExportOptions { Batch = batch });
            using var ort = Onnx.OnnxRuntimeModel.Load(path, get_num_threads());
            using var x = randn(batch, 3, imageSize, imageSize);
            var input = x.data<float>().ToArray();
            var (torchMs, ortMs) = TimeInterleaved(repeats,
                () => { using var scope = NewDisposeScope(); model.Predict(x); },
                () => ort.Run(input, batch));
            return (torchMs / batch, ortMs / batch);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The op SS2D calls (Δ projected inside, R = ⌈64/16⌉ = 4 at this stage), forward, in ns per step, and its port
    /// bound, measured alternately with it.
    /// </summary>
    private static (double KernelNs, double BoundNs) ScanNsPerStep(int batch, int side, int repeats)
    {
        const int k = 8, d = 128, n = 16, r = 4;
        int l = side * side, width = ScanKernels.HardwareWidth;
        using var scope = NewDisposeScope();
        var x = ScanSampleInputs.CreateProjected(batch, k, d, n, l, r);
        var paths = PathTensors.Get(ScanType.Hilbert, side, k);
        var scan = SelectiveScan.For(x[0]);
        var (best, rate) = PortBound.AlternatedWithKernel(width, repeats, () =>
        {
            using var _ = no_grad();
            using var s = NewDisposeScope();
            scan.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        });
        double bound = width >= 8 ? PortBound.NsPerStep(width, r, rate) : double.NaN;
        return (best * 1e6 / ((double)batch * k * d * l), bound);
    }

    /// <summary>
    /// The training ratio's terms round by round on a fresh model (random weights; <c>bench -- pairs</c>): after a warm-up
    /// pass and step, every round runs a step from the images, a step from kept encoder features and an inference pass,
    /// so that each round's ratios compare the three under the same machine conditions.
    /// </summary>
    public static IReadOnlyList<TrainingRound> TrainingRounds(Backbone backbone = Backbone.ResNet34, int imageSize = 256,
        int batch = 8, int trainBatch = 16, int rounds = 8)
    {
        using var model = RandomModel(backbone, imageSize);
        using var x = randn(batch, 3, imageSize, imageSize);
        using (var scope = NewDisposeScope()) model.Predict(x);   // warm-up of the inference pass
        return Train(model, x, trainBatch, imageSize, rounds).Rounds;
    }

    /// <summary>
    /// <paramref name="rounds"/> rounds of a training step from the images, one from kept encoder features (both ms per
    /// image) and an inference pass on <paramref name="inferenceInput"/> (ms per image), after a warm-up step; and the
    /// peak RSS of the rounds. The three of a round share the machine's conditions: this VM has slow spells of whole
    /// seconds to minutes (docs/performance.md, "Issue 14, phase 11"), and a step and a pass timed a minute apart could
    /// fall on either side of one.
    /// </summary>
    private static (List<TrainingRound> Rounds, double PeakRssMb) Train(MambaADModel model, Tensor inferenceInput, int batch,
        int imageSize, int rounds)
    {
        model.train();
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = optim.AdamW(trainable, 0.005);
        using var x = randn(batch, 3, imageSize, imageSize);
        using var featureScope = NewDisposeScope();
        var features = model.Encoder.call(x);
        void Step(bool cached)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = cached ? model.Loss(features) : model.Loss(x);
            loss.backward();
            nn.utils.clip_grad_norm_(trainable, 5.0);
            optimizer.step();
            scope.Dispose();
            HeapTrim.Run();   // as the trainer does after every step
        }
        void Infer()
        {
            model.eval();
            using (var scope = NewDisposeScope()) model.Predict(inferenceInput);
            model.train();
        }
        Step(cached: false); // warm-up (allocates optimizer state); Predict is warm from the inference timing
        PeakRss.Reset();
        var result = new List<TrainingRound>();
        for (int r = 0; r < rounds; r++)
            result.Add(new TrainingRound(Ms(() => Step(cached: false)) / batch, Ms(() => Step(cached: true)) / batch,
                Ms(Infer) / inferenceInput.shape[0]));
        model.eval();
        return (result, PeakRss.Megabytes());
    }
}
