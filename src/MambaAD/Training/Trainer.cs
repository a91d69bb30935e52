using System.Diagnostics;
using System.Text.Json;
using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Util;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Training;

/// <summary>The outcome of a training run.</summary>
/// <param name="RunDir">The run folder.</param>
/// <param name="LastCheckpoint">The latest state (<c>RUN/last</c>).</param>
/// <param name="BestCheckpoint">The checkpoint with the highest mean mAD at a test (<c>RUN/best</c>), if any test ran.</param>
/// <param name="LastTest">The final test's result, if any (without a gallery: <see cref="ModelTesting"/> on the checkpoint makes one).</param>
/// <param name="Completed">False when cancelled: resume with the same run folder.</param>
/// <param name="Warnings">Files left out (<see cref="DatasetOptions.SkipBad"/>) and saves recovered at the start, one line each.</param>
public sealed record TrainResult(string RunDir, string LastCheckpoint, string? BestCheckpoint, TestReport? LastTest, bool Completed,
    IReadOnlyList<string>? Warnings = null);

/// <summary>
/// Trains MambaAD the official way (spec §11, §13): one model for all classes on their normal images; AdamW with the
/// official weight-decay grouping, gradient-norm clipping and a per-iteration step decay; tests during training;
/// keeps <c>last/</c> and <c>best/</c> checkpoints; resumes exactly (optimizer, RNG, position in the epoch, plan).
/// </summary>
/// <remarks>
/// Crash safety: <c>last/</c> (model.pth, model.json, optimizer.bin, rng.pth) and <c>best/</c> are each replaced as a
/// whole (<see cref="AtomicFolder"/>), so a kill or a full disk at any moment leaves the previous set or the new one;
/// the set before the latest stays as <c>last.previous/</c>, the fallback of a resume that finds <c>last/</c>
/// unreadable. Non-finite weights are never saved. Cancellation (Ctrl-C) saves the exact position after the current
/// step; a cancelled test is not used.
/// </remarks>
public static class Trainer
{
    private const string OptimizerFile = "optimizer.bin";
    private const string RngFile = "rng.pth";
    private const string UnreadableSuffix = ".unreadable";
    private const int FitProbe = 3;   // iterations (warm-up included) before a time budget first fits the plan
    private const int FitEvery = 10;  // then re-fit every this many iterations, until the learning-rate decay

    private static bool RefitDue(long done) => done == FitProbe || (done > FitProbe && (done - FitProbe) % FitEvery == 0);

    /// <summary>Starts a new run in <see cref="TrainRequest.OutDir"/>: a new or empty folder, or one whose earlier run saved no checkpoint.</summary>
    /// <exception cref="MambaADException">Bad options, a folder that holds a run or other files, unreadable data or weights, a save that failed.</exception>
    public static TrainResult Train(TrainRequest request, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var options = request.Options.Validate();
        var outDir = PrepareNewRun(request.OutDir);
        using var weights = request.EncoderWeights == "embedded" ? EncoderWeights.Embedded() : EncoderWeights.FromFile(request.EncoderWeights, request.Config.Backbone);
        if (weights.Backbone != request.Config.Backbone)
            throw new MambaADException($"the backbone {EncoderDescriptor.Of(request.Config.Backbone).Name} does not match the encoder weights ({weights.Describe()} is {EncoderDescriptor.Of(weights.Backbone).Name})", nameof(MambaADConfig.Backbone));
        var dataset = Dataset.Open(request.DataRoot, request.Dataset);
        if (options.Threads > 0) set_num_threads(options.Threads);
        manual_seed(options.Seed);
        var model = new MambaADModel(request.Config);
        try
        {
            weights.LoadInto(model.Encoder);
            var state = new TrainingState(CheckpointKind.Last, 0, 0, 0, 0, null, null, options, Path.GetFullPath(request.DataRoot), dataset.Layout,
                SkipBad: request.Dataset?.SkipBad ?? false);
            var info = new CheckpointInfo(CheckpointInfo.CurrentFormat, request.Config, weights.Describe(), weights.Normalization,
                dataset.ClassNames, null, state, DateTime.UtcNow.ToString("O"));
            model.to(new Device(options.Device)); // before the optimizer takes the parameters
            var (trainable, optimizer) = BuildOptimizer(model, options);
            using (optimizer)
                return new Run(model, info, dataset, outDir, progress, trainable, optimizer, savedIteration: null).Execute(null, cancellationToken);
        }
        finally
        {
            model.Dispose();
        }
    }

    /// <summary>
    /// Continues the run in <paramref name="runDir"/> from its last checkpoint, exactly where it stopped and with its
    /// plan. A save interrupted by a crash is completed or undone first; when <c>last/</c> is unreadable the previous
    /// save (<c>last.previous/</c>) is used, with a warning. A finished run is not trained further.
    /// </summary>
    /// <param name="runDir">The run folder.</param>
    /// <param name="progress">Progress reports.</param>
    /// <param name="cancellationToken">Stops after the current step, saving the position.</param>
    /// <param name="skipBad">Leave unreadable images out from now on, even if the run started without it.</param>
    /// <exception cref="MambaADException">Not a run folder, no readable checkpoint, unreadable data, a save that failed.</exception>
    public static TrainResult Resume(string runDir, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default,
        bool skipBad = false)
    {
        if (!Directory.Exists(runDir))
            throw new MambaADException($"{runDir}: no such folder (give the --out folder of a training run)", "RunDir");
        var warnings = RecoverSaves(runDir);
        foreach (var w in warnings) Warn(progress, w);
        var snapshot = OpenLast(runDir, progress, warnings);
        try
        {
            var state = snapshot.Checkpoint.Info.Training!;
            if (skipBad && !state.SkipBad)
                snapshot = snapshot with { Checkpoint = snapshot.Checkpoint with { Info = snapshot.Checkpoint.Info with { Training = state with { SkipBad = true } } } };
            var info = snapshot.Checkpoint.Info;
            if (info.Training!.IsFinished)
            {
                progress?.Report(new TrainingProgress(TrainingPhase.Done, info.Training.Epoch, info.Training.Epoch, info.Training.Iteration,
                    info.Training.TotalIterations, null, 0, TimeSpan.Zero, $"{runDir} is finished (iteration {info.Training.Iteration} of {info.Training.TotalIterations}): nothing to train"));
                var best = RunFolder.Of(runDir, CheckpointKind.Best);
                return new TrainResult(runDir, RunFolder.Of(runDir, CheckpointKind.Last), Directory.Exists(best) ? best : null, null, true, warnings);
            }
            if (info.Training.Options.Threads > 0) set_num_threads(info.Training.Options.Threads);
            var dataset = Dataset.Open(info.Training.DataRoot, new DatasetOptions(info.Training.Layout, info.Classes.ToList(), info.Training.SkipBad));
            var run = new Run(snapshot.Checkpoint.Model, info, dataset, runDir, progress, snapshot.Trainable, snapshot.Optimizer,
                savedIteration: info.Training.Iteration, warnings);
            return run.Execute(snapshot.Rng, cancellationToken);
        }
        finally
        {
            snapshot.Dispose();
        }
    }

    /// <summary>A loaded <c>last/</c>: model and description, optimizer with its state, RNG state.</summary>
    private sealed record Snapshot(LoadedCheckpoint Checkpoint, List<Parameter> Trainable, OptimizerHelper Optimizer, Tensor Rng) : IDisposable
    {
        public void Dispose()
        {
            Optimizer.Dispose();
            Rng.Dispose();
            Checkpoint.Dispose();
        }
    }

    /// <summary>Finishes or undoes saves that a crash interrupted, for both checkpoints of a run; says what was done.</summary>
    private static List<string> RecoverSaves(string runDir)
    {
        var done = new List<string>();
        foreach (var kind in new[] { CheckpointKind.Last, CheckpointKind.Best })
            if (AtomicFolder.Recover(RunFolder.Of(runDir, kind), Checkpoint.InfoFile) is { } what) done.Add(what);
        return done;
    }

    /// <summary>Loads <c>last/</c>, or <c>last.previous/</c> when <c>last/</c> is unreadable (which it then replaces, the unreadable one kept aside).</summary>
    private static Snapshot OpenLast(string runDir, IProgress<TrainingProgress>? progress, List<string> warnings)
    {
        var last = RunFolder.Of(runDir, CheckpointKind.Last);
        var previous = AtomicFolder.PreviousOf(last);
        bool hasPrevious = File.Exists(Path.Combine(previous, Checkpoint.InfoFile));
        if (!Directory.Exists(last) && !hasPrevious)
            throw new MambaADException($"{runDir}: no last/{Checkpoint.InfoFile} in it (is it a run folder made by training?)", "RunDir");
        string? problem = null;
        if (Directory.Exists(last))
        {
            try { return OpenSnapshot(last); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problem = Unreadable(e);
                if (!hasPrevious)
                    throw new MambaADException($"{last} cannot be resumed: {problem}; there is no previous save to fall back to, so start a new run (train --out a new folder)", "RunDir");
            }
            var aside = last + UnreadableSuffix;
            if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);
            Directory.Move(last, aside);
            problem += $" (kept as {aside})";
        }
        Directory.Move(previous, last);
        Durable.FlushDirectory(runDir);
        try
        {
            var snapshot = OpenSnapshot(last);
            var w = $"{last} {(problem is null ? "was missing" : $"was unreadable: {problem}")}; resuming from the save before it (iteration {snapshot.Checkpoint.Info.Training!.Iteration})";
            warnings.Add(w);
            Warn(progress, w);
            return snapshot;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new MambaADException($"{runDir} cannot be resumed: {(problem is null ? "" : $"its last save is unreadable ({problem}) and ")}the save before it is unreadable too ({Unreadable(e)}); start a new run (train --out a new folder)", "RunDir");
        }
    }

    private static string Unreadable(Exception e) => e is MambaADException ? e.Message : "its files are damaged or incomplete";

    private static Snapshot OpenSnapshot(string dir)
    {
        var loaded = Checkpoint.Load(dir);
        List<Parameter>? trainable = null;
        OptimizerHelper? optimizer = null;
        Tensor? rng = null;
        try
        {
            var state = loaded.Info.Training ?? throw new MambaADException($"{dir} holds no training state: it cannot be resumed");
            var rngTable = PyTorchFile.Read(Path.Combine(dir, RngFile), "RNG state");
            rng = rngTable["rng"] as Tensor ?? throw new MambaADException($"{Path.Combine(dir, RngFile)} holds no 'rng' tensor");
            loaded.Model.to(new Device(state.Options.Device)); // before the optimizer takes the parameters
            (trainable, optimizer) = BuildOptimizer(loaded.Model, state.Options);
            var optimizerPath = Path.Combine(dir, OptimizerFile);
            if (!File.Exists(optimizerPath)) throw new MambaADException($"{optimizerPath} is missing");
            try { optimizer.load_state_dict(optimizerPath); }
            catch (Exception e) when (e is not MambaADException and not OutOfMemoryException)
            {
                throw new MambaADException($"{optimizerPath} is damaged or incomplete", e);
            }
            return new Snapshot(loaded, trainable, optimizer, rng);
        }
        catch
        {
            optimizer?.Dispose();
            rng?.Dispose();
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The run folder of a new run, created: refused when it is a file, holds a run (resume it) or holds anything
    /// else than what a run that saved no checkpoint leaves (which is cleared).
    /// </summary>
    private static string PrepareNewRun(string outDir)
    {
        if (Directory.Exists(outDir))
        {
            RecoverSaves(outDir);
            var last = RunFolder.Of(outDir, CheckpointKind.Last);
            if (File.Exists(Path.Combine(last, Checkpoint.InfoFile)) || File.Exists(Path.Combine(AtomicFolder.PreviousOf(last), Checkpoint.InfoFile)))
                throw new MambaADException($"{outDir} already holds a run: resume it, or choose another folder", nameof(TrainRequest.OutDir));
            var leftovers = new HashSet<string>(StringComparer.Ordinal)
                { RunFolder.MetricsFile, RunFolder.Name(CheckpointKind.Best), RunFolder.Name(CheckpointKind.Last), RunFolder.Name(CheckpointKind.Last) + UnreadableSuffix };
            var entries = Directory.EnumerateFileSystemEntries(outDir).Select(Path.GetFileName).ToList();
            var foreign = entries.Where(e => !leftovers.Contains(e!)).ToList();
            if (foreign.Count > 0)
                throw new MambaADException($"{outDir} is not empty and not a run folder (it holds {string.Join(", ", foreign.Take(3))}{(foreign.Count > 3 ? ", …" : "")}): " +
                    "choose an empty or new folder for the run, or continue a run with --resume", nameof(TrainRequest.OutDir));
            // What a run that was stopped before its first save leaves: start afresh.
            foreach (var e in entries.Select(e => Path.Combine(outDir, e!)))
                if (Directory.Exists(e)) Directory.Delete(e, recursive: true); else File.Delete(e);
        }
        return OutputPath.Folder(outDir, nameof(TrainRequest.OutDir));
    }

    private static (List<Parameter> Trainable, OptimizerHelper Optimizer) BuildOptimizer(MambaADModel model, TrainingOptions o)
    {
        // Spec §13: weight decay on every trainable tensor with ndim > 1 whose name does not end in ".bias".
        var named = StateDict.Ordered(model).Where(e => e.Tensor is Parameter { requires_grad: true }).ToList();
        var byDecay = named.ToLookup(e => e.Tensor.dim() > 1 && !e.Name.EndsWith(".bias"), e => (Parameter)e.Tensor);
        var groups = new List<AdamW.ParamGroup>
        {
            new(byDecay[true].ToList(), new AdamW.Options { LearningRate = o.LearningRate, weight_decay = o.WeightDecay }),
            new(byDecay[false].ToList(), new AdamW.Options { LearningRate = o.LearningRate, weight_decay = 0 }),
        };
        var optimizer = optim.AdamW(groups, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, amsgrad: false);
        return (named.Select(e => (Parameter)e.Tensor).ToList(), optimizer);
    }

    private static void Warn(IProgress<TrainingProgress>? progress, string message) =>
        progress?.Report(new TrainingProgress(TrainingPhase.Warning, 0, 0, 0, 0, null, 0, null, message));

    /// <summary>One run's mutable state.</summary>
    private sealed class Run(MambaADModel model, CheckpointInfo info, Dataset dataset, string runDir, IProgress<TrainingProgress>? progress,
        List<Parameter> trainable, OptimizerHelper optimizer, long? savedIteration, IEnumerable<string>? warnings = null)
    {
        private CheckpointInfo _info = info;
        private readonly TrainingOptions _o = info.Training!.Options;
        private readonly bool _skipBad = info.Training!.SkipBad;
        private double? _bestMad = ReadBest(runDir);
        private long? _savedIteration = savedIteration;              // the iteration of the checkpoint in last/, if any
        private readonly List<string> _warnings = [.. warnings ?? [], .. dataset.Warnings];
        private readonly Stopwatch _clock = new();                     // optimisation time in this process (tests and saves excluded)
        private readonly double _secondsBefore = info.Training!.TrainingSeconds; // … and in the processes before it
        private long _total, _decayAt;
        private EncoderFeatureCache? _cache;
        private EncoderFeatureCache? _testCache;                     // the test images' features, when they fit in memory too
        private bool _servedFromCache;                               // a step has taken its features from the cache
        private readonly Lazy<HashSet<string>> _testFiles = new(() =>
            dataset.Test.SelectMany(s => s.MaskPath is { } m ? new[] { s.ImagePath, m } : [s.ImagePath]).ToHashSet());

        public TrainResult Execute(Tensor? rng, CancellationToken ct)
        {
            foreach (var w in dataset.Warnings) Warn(progress, w);
            var device = new Device(_o.Device);
            model.to(device);
            using var cache = EncoderFeatureCache.For(dataset.Train.Count, model.Encoder.Descriptor, model.Config.ImageSize, _o.FeatureCacheGb, runDir, out var decision);
            if (decision is not null)
                progress?.Report(new TrainingProgress(TrainingPhase.Train, 0, 0, 0, 0, null, 0, null, decision));
            _cache = cache;
            using var testCache = EncoderFeatureCache.ForTests(dataset.Test.Count, cache, model.Encoder.Descriptor, model.Config.ImageSize,
                _o.FeatureCacheGb, out var testDecision);
            if (testDecision is not null)
                progress?.Report(new TrainingProgress(TrainingPhase.Train, 0, 0, 0, 0, null, 0, null, testDecision));
            _testCache = testCache;
            var loader = new BatchLoader(dataset.Train, new LoaderOptions(_o.BatchSize, model.Config.ImageSize, _info.Normalization,
                Shuffle: true, Seed: _o.Seed, DropLast: true, Workers: _o.Workers, SkipBad: _skipBad, PixelsNotNeeded: cache is null ? null : cache.HoldsAll));
            if (loader.BatchesPerEpoch == 0)
                throw new MambaADException($"{dataset.Root}: {dataset.Train.Count} training images are fewer than one batch of {_o.BatchSize}; lower the batch size", nameof(TrainingOptions.BatchSize));
            int perEpoch = loader.BatchesPerEpoch;
            long maxPlan = _o.Iterations ?? (long)_o.Epochs * perEpoch;
            var s = _info.Training!;
            // A resumed run keeps its plan (a time budget may have shortened it) and its decay point (spec §13).
            _total = s.TotalIterations > 0 ? s.TotalIterations : maxPlan;
            _decayAt = s.DecayIteration ?? (long)Math.Round(_o.LrDecayAt * _total);
            int epochs = (int)((_total + perEpoch - 1) / perEpoch);
            if (rng is not null)
            {
                set_rng_state(rng);
                TrimMetrics(s.Epoch);
            }
            long iteration = s.Iteration, startIteration = iteration;
            int startEpoch = s.Epoch, startBatch = s.BatchInEpoch;
            TestReport? lastTest = null;
            (long Iterations, double Seconds)? probe = null; // where the time-budget speed measurement starts
            if (ct.IsCancellationRequested)
                return Interrupt(startEpoch, startBatch, iteration, s.Loss, lastTest);

            for (int epoch = startEpoch; epoch < epochs; epoch++)
            {
                int batchIndex = epoch == startEpoch ? startBatch : 0;
                // The running mean of a resumed epoch continues from the saved one.
                int lossCount = epoch == startEpoch && s.Loss is not null ? startBatch : 0;
                double lossSum = lossCount > 0 ? s.Loss!.Value * lossCount : 0;
                int warned = loader.Warnings.Count;
                model.train();
                if (iteration < _total)
                {
                    _clock.Start();
                    foreach (var batch in loader.Epoch(epoch, ct, batchIndex))
                    {
                        double lr = iteration < _decayAt ? _o.LearningRate : _o.LearningRate * _o.LrDecayFactor;
                        bool wasServing = _servedFromCache;
                        double loss = Step(batch, lr, device);
                        if (!double.IsFinite(loss)) throw Diverged($"the loss became {loss}", iteration + 1, epoch + 1);
                        iteration++;
                        batchIndex = batch.Index + 1;
                        if (_servedFromCache && !wasServing && probe is not null)
                            probe = (iteration - startIteration, _clock.Elapsed.TotalSeconds); // steps from kept features are faster: measure afresh
                        if (_o.TimeLimit is { } limit && iteration < _decayAt && RefitDue(iteration - startIteration))
                        {
                            // Fit the plan into what is left of the time budget at the speed measured so far (after the
                            // first, warm-up iterations), again every few iterations until the decay starts, so that a
                            // machine whose load changes still ends on time. The decay point (spec §13) stays at 80 %.
                            double elapsed = _clock.Elapsed.TotalSeconds;
                            long done = iteration - startIteration;
                            probe ??= (done, elapsed);
                            double perIteration = done > probe.Value.Iterations
                                ? (elapsed - probe.Value.Seconds) / (done - probe.Value.Iterations)
                                : elapsed / done;
                            double left = limit.TotalSeconds - _secondsBefore - elapsed;
                            long fits = iteration + (long)Math.Max(0, left / perIteration);
                            long planned = Math.Max(iteration, Math.Min(maxPlan, fits));
                            if (planned != _total)
                            {
                                _total = planned;
                                epochs = (int)((_total + perEpoch - 1) / perEpoch);
                                _decayAt = Math.Max(iteration, (long)Math.Round(_o.LrDecayAt * _total));
                                progress?.Report(new TrainingProgress(TrainingPhase.Train, epoch + 1, epochs, iteration, _total, null, 0, null,
                                    $"time budget {limit.TotalMinutes:F1} min: {perIteration:F2} s per iteration → {_total} iterations ({epochs} epochs)"));
                            }
                        }
                        lossSum += loss;
                        lossCount++;
                        double ips = (iteration - startIteration) * _o.BatchSize / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
                        var eta = TimeSpan.FromSeconds((_total - iteration) * _o.BatchSize / Math.Max(1e-9, ips));
                        progress?.Report(new TrainingProgress(TrainingPhase.Train, epoch + 1, epochs, iteration, _total, lossSum / lossCount, ips, eta, null, loss));
                        if (ct.IsCancellationRequested || iteration >= _total) break;
                    }
                    _clock.Stop();
                }
                foreach (var w in loader.Warnings.Skip(warned).Distinct()) AddWarning(w);
                double? meanLoss = lossCount > 0 ? lossSum / lossCount : null;
                if (ct.IsCancellationRequested)
                    return Interrupt(epoch, batchIndex, iteration, meanLoss, lastTest);
                AppendMetrics(new { @event = "train", epoch = epoch + 1, iteration, loss = meanLoss, lr = iteration - 1 < _decayAt ? _o.LearningRate : _o.LearningRate * _o.LrDecayFactor,
                    images_per_s = Math.Round((iteration - startIteration) * _o.BatchSize / Math.Max(1e-9, _clock.Elapsed.TotalSeconds), 2),
                    rss_mb = Megabytes(ResidentMemory.CurrentMegabytes()), peak_rss_mb = Megabytes(ResidentMemory.PeakMegabytes()) });
                bool end = epoch + 1 == epochs || iteration >= _total;
                if (end || _o.IsTestEpoch(epoch + 1, epochs))
                {
                    var test = TestNow(epoch + 1, epochs, iteration, ct);
                    if (ct.IsCancellationRequested) // a partial test says nothing: resume repeats it
                        return Interrupt(epoch, batchIndex, iteration, meanLoss, lastTest);
                    lastTest = test;
                    SaveLast(epoch + 1, 0, iteration, meanLoss, lastTest);
                }
                if (end) break;
            }
            progress?.Report(new TrainingProgress(TrainingPhase.Done, epochs, epochs, iteration, _total, null, 0, TimeSpan.Zero, null));
            return Result(lastTest, completed: true);
        }

        /// <summary>Whole megabytes for the run's log, null where the system does not say (a long run's memory at a glance).</summary>
        private static long? Megabytes(double mb) => double.IsFinite(mb) ? (long)Math.Round(mb) : null;

        /// <summary>Saves the exact position (the epoch's batches done so far) and ends the run as interrupted.</summary>
        private TrainResult Interrupt(int epoch, int batchInEpoch, long iteration, double? loss, TestReport? lastTest)
        {
            SaveLast(epoch, batchInEpoch, iteration, loss, null);
            return Result(lastTest, completed: false);
        }

        private double Step(Batch batch, double lr, Device device)
        {
            double loss = StepCore(batch, lr, device);
            HeapTrim.Run();   // the step's freed activations back to the system (HeapTrim: 6 → 4.3 GB peak at batch 16)
            return loss;
        }

        private double StepCore(Batch batch, double lr, Device device)
        {
            using var scope = NewDisposeScope();
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            optimizer.zero_grad();
            var loss = model.Loss(EncoderFeatures(batch, device));
            double value = loss.item<float>();
            if (!double.IsFinite(value)) return value; // nothing is stepped: the last checkpoint stays good
            loss.backward();
            nn.utils.clip_grad_norm_(trainable, _o.ClipGradNorm);
            optimizer.step();
            return value;
        }

        /// <summary>
        /// The batch's encoder features: from the cache when the loader left its images undecoded (it asks the cache,
        /// <see cref="LoaderOptions.PixelsNotNeeded"/>, which only grows), else from the encoder (and then kept).
        /// </summary>
        private Tensor[] EncoderFeatures(Batch batch, Device device)
        {
            if (!batch.HasPixels) _servedFromCache = true;
            return EncoderFeatures(batch, device, _cache);
        }

        /// <summary>The batch's features from <paramref name="cache"/> when the loader left its images undecoded, else
        /// from the encoder, then kept in <paramref name="cache"/> (when there is one).</summary>
        private Tensor[] EncoderFeatures(Batch batch, Device device, EncoderFeatureCache? cache)
        {
            if (!batch.HasPixels) return cache!.Get(batch.Samples, device);
            int size = model.Config.ImageSize;
            var features = model.Encoder.call(tensor(batch.Images, [batch.Count, 3, size, size]).to(device));
            if (cache?.Add(batch.Samples, features) is { } stopped) AddWarning(stopped);
            return features;
        }

        private MambaADException Diverged(string what, long iteration, int epoch) => new(
            $"{what} at iteration {iteration} (epoch {epoch}); training stopped. " +
            (_savedIteration is { } k
                ? $"The last good checkpoint is {RunFolder.Of(runDir, CheckpointKind.Last)} (iteration {k})"
                : "No checkpoint had been saved yet") + "; try a lower learning rate", nameof(TrainingOptions.LearningRate));

        /// <summary>Refuses to save weights that are not all finite (a diverged step): the last good checkpoint stays.</summary>
        private void EnsureFinite(long iteration, int epoch)
        {
            using var _ = NewDisposeScope();
            foreach (var (name, p) in model.named_parameters())
                if (!isfinite(p).all().item<bool>())
                    throw Diverged($"the weights became non-finite ({name})", iteration, Math.Max(1, epoch));
        }

        /// <summary>
        /// A test batch's maps in eval mode (train mode restored after): from its kept encoder features when the loader
        /// left its images undecoded, else from the images (their features then kept, when there is a test cache). The
        /// encoder gives an image the same features every time, so a test from kept features is the test from the images.
        /// </summary>
        private AnomalyMaps ScoreTestBatch(Batch batch, CancellationToken ct)
        {
            if (_testCache is null) return model.Run(batch.Images, batch.Count, ct);
            ct.ThrowIfCancellationRequested();
            return model.InEval(() =>
            {
                using var scope = NewDisposeScope();
                return model.Predict(EncoderFeatures(batch, model.parameters().First().device, _testCache));
            });
        }

        private TestReport? TestNow(int epoch, int epochs, long iteration, CancellationToken ct)
        {
            if (dataset.Test.Count == 0) return null;
            progress?.Report(new TrainingProgress(TrainingPhase.Test, epoch, epochs, iteration, _total, null, 0, null, $"testing {dataset.Test.Count} images"));
            TestReport report;
            try
            {
                // No gallery: nothing reads it in training, and batches replayed from kept features have no pixels.
                report = ModelTesting.Run(ScoreTestBatch, model.Config.ImageSize, _info.Normalization, dataset.Test,
                    new TestOptions(Workers: _o.Workers, SkipBad: _skipBad, GalleryPerClass: 0), null, ct,
                    _testCache is null ? null : _testCache.HoldsAll);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return null;
            }
            if (ct.IsCancellationRequested) return null;
            // Files left out (--skip-bad), not the test's notes (vanished masks), which would repeat at every test.
            foreach (var w in report.Warnings.Where(w => w.IndexOf(": ", StringComparison.Ordinal) is > 0 and var i && _testFiles.Value.Contains(w[..i]))) AddWarning(w);
            var mean = report.Result.Mean;
            AppendMetrics(new { @event = "test", epoch, iteration, mean = MetricsDict(mean),
                classes = report.Result.Classes.ToDictionary(c => c.Key, c => MetricsDict(c.Value)) });
            progress?.Report(new TrainingProgress(TrainingPhase.Test, epoch, epochs, iteration, _total, null, 0, null,
                $"epoch {epoch}: " + string.Join("  ", ClassMetrics.Names.Zip(mean.Values, (n, v) => $"{n} {(v is null ? "–" : (100 * v.Value).ToString("F1"))}"))));
            if (mean.MAD is { } mad && double.IsFinite(mad) && (_bestMad is null || 100 * mad > _bestMad))
            {
                EnsureFinite(iteration, epoch);
                var bestInfo = _info with { Training = State(CheckpointKind.Best, epoch, 0, iteration, _info.Training!.Loss, 100 * mad) };
                var best = RunFolder.Of(runDir, CheckpointKind.Best);
                AtomicFolder.Replace(best, dir => Checkpoint.Save(dir, model, bestInfo), Checkpoint.InfoFile, keepPrevious: false);
                _bestMad = 100 * mad;
                progress?.Report(new TrainingProgress(TrainingPhase.Checkpoint, epoch, epochs, iteration, _total, null, 0, null,
                    $"best so far (mean mAD {_bestMad:F2}) → {best}"));
            }
            return report;
        }

        private static Dictionary<string, double?> MetricsDict(ClassMetrics m) =>
            ClassMetrics.Names.Zip(m.Values, (n, v) => (n, v)).ToDictionary(p => p.n, p => p.v is null ? null : (double?)Math.Round(100 * p.v.Value, 4));

        private TrainingState State(CheckpointKind kind, int epoch, int batchInEpoch, long iteration, double? loss, double? mad) =>
            _info.Training! with
            {
                Kind = kind, Epoch = epoch, BatchInEpoch = batchInEpoch, Iteration = iteration, TotalIterations = _total, DecayIteration = _decayAt,
                Loss = loss, MeanMad = mad, TrainingSeconds = _secondsBefore + _clock.Elapsed.TotalSeconds,
            };

        private void SaveLast(int epoch, int batchInEpoch, long iteration, double? loss, TestReport? test)
        {
            EnsureFinite(iteration, epoch);
            var dir = RunFolder.Of(runDir, CheckpointKind.Last);
            double? mad = test?.Result.Mean.MAD is { } m ? 100 * m : _info.Training!.MeanMad;
            var info = _info with { Training = State(CheckpointKind.Last, epoch, batchInEpoch, iteration, loss, mad) };
            // Training state first, model.json last: it marks the set complete (AtomicFolder swaps in whole sets only).
            AtomicFolder.Replace(dir, stage =>
            {
                optimizer.save_state_dict(Path.Combine(stage, OptimizerFile));
                CrashPoint.Reached("last:optimizer");
                using (var rng = get_rng_state()) PyTorchFile.WriteStateDict(Path.Combine(stage, RngFile), [("rng", rng)]);
                Checkpoint.WriteModel(stage, model);
                CrashPoint.Reached("last:model");
                Checkpoint.WriteInfo(stage, info);
            }, Checkpoint.InfoFile, keepPrevious: true);
            _info = info;
            _savedIteration = iteration;
            progress?.Report(new TrainingProgress(TrainingPhase.Checkpoint, epoch, 0, iteration, _total, null, 0, null, $"saved {dir} (iteration {iteration})"));
        }

        private void AddWarning(string w)
        {
            if (_warnings.Contains(w)) return;
            _warnings.Add(w);
            Warn(progress, w);
        }

        private TrainResult Result(TestReport? lastTest, bool completed)
        {
            var best = RunFolder.Of(runDir, CheckpointKind.Best);
            return new TrainResult(runDir, RunFolder.Of(runDir, CheckpointKind.Last), Directory.Exists(best) ? best : null, lastTest, completed, _warnings);
        }

        private void AppendMetrics(object record)
        {
            var line = JsonSerializer.Serialize(record) + "\n";
            File.AppendAllText(Path.Combine(runDir, RunFolder.MetricsFile), line);
        }

        /// <summary>On resume, drops log lines of epochs after the checkpoint the run continues from (a kill can leave a partial last line too).</summary>
        private void TrimMetrics(int completedEpochs)
        {
            var path = Path.Combine(runDir, RunFolder.MetricsFile);
            if (!File.Exists(path)) return;
            var keep = File.ReadAllLines(path).Where(l =>
            {
                try { return JsonDocument.Parse(l).RootElement.GetProperty("epoch").GetInt32() <= completedEpochs; }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException) { return false; }
            });
            AtomicFile.WriteAllText(path, string.Concat(keep.Select(l => l + "\n")));
        }

        private static double? ReadBest(string runDir)
        {
            var path = Path.Combine(RunFolder.Of(runDir, CheckpointKind.Best), Checkpoint.InfoFile);
            if (!File.Exists(path)) return null;
            return CheckpointInfo.FromJson(File.ReadAllText(path), path).Training?.MeanMad;
        }
    }
}
