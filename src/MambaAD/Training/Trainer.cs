using System.Diagnostics;
using System.Text.Json;
using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Inference;
using MambaAD.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Training;

/// <summary>The outcome of a training run.</summary>
/// <param name="RunDir">The run folder.</param>
/// <param name="LastCheckpoint">The latest state (<c>RUN/last</c>).</param>
/// <param name="BestCheckpoint">The checkpoint with the highest mean mAD at a test (<c>RUN/best</c>), if any test ran.</param>
/// <param name="LastTest">The final test's result, if any.</param>
/// <param name="Completed">False when cancelled: resume with the same run folder.</param>
public sealed record TrainResult(string RunDir, string LastCheckpoint, string? BestCheckpoint, TestReport? LastTest, bool Completed);

/// <summary>
/// Trains MambaAD the official way (spec §11, §13): one model for all classes on their normal images; AdamW with the
/// official weight-decay grouping, gradient-norm clipping and a per-iteration step decay; tests during training;
/// keeps <c>last/</c> and <c>best/</c> checkpoints; resumes exactly (optimizer, RNG, position in the epoch).
/// </summary>
public static class Trainer
{
    private const string OptimizerFile = "optimizer.bin";
    private const string RngFile = "rng.pth";
    private const int FitProbe = 3;   // iterations (warm-up included) before a time budget first fits the plan
    private const int FitEvery = 10;  // then re-fit every this many iterations, until the learning-rate decay

    private static bool RefitDue(long done) => done == FitProbe || (done > FitProbe && (done - FitProbe) % FitEvery == 0);

    /// <summary>Starts a new run in <see cref="TrainRequest.OutDir"/>.</summary>
    public static TrainResult Train(TrainRequest request, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var options = request.Options.Validate();
        if (File.Exists(Path.Combine(RunFolder.Of(request.OutDir, CheckpointKind.Last), Checkpoint.InfoFile)))
            throw new MambaADException($"{request.OutDir} already holds a run: resume it, or choose another folder", nameof(TrainRequest.OutDir));
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
            var state = new TrainingState(CheckpointKind.Last, 0, 0, 0, 0, null, null, options, Path.GetFullPath(request.DataRoot), dataset.Layout);
            var info = new CheckpointInfo(CheckpointInfo.CurrentFormat, request.Config, weights.Describe(), weights.Normalization,
                dataset.ClassNames, null, state, DateTime.UtcNow.ToString("O"));
            Directory.CreateDirectory(request.OutDir);
            return new Run(model, info, dataset, request.OutDir, progress).Execute(null, cancellationToken);
        }
        finally
        {
            model.Dispose();
        }
    }

    /// <summary>Continues the run in <paramref name="runDir"/> from its last checkpoint, exactly where it stopped.</summary>
    public static TrainResult Resume(string runDir, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var lastDir = RunFolder.Of(runDir, CheckpointKind.Last);
        if (!File.Exists(Path.Combine(lastDir, Checkpoint.InfoFile)))
            throw new MambaADException($"{runDir}: no last/{Checkpoint.InfoFile} in it (is it a run folder made by training?)", "RunDir");
        using var loaded = Checkpoint.Load(lastDir);
        var state = loaded.Info.Training ?? throw new MambaADException($"{lastDir} holds no training state: it cannot be resumed");
        if (state.Options.Threads > 0) set_num_threads(state.Options.Threads);
        var dataset = Dataset.Open(state.DataRoot, new DatasetOptions(state.Layout, loaded.Info.Classes.ToList()));
        return new Run(loaded.Model, loaded.Info, dataset, runDir, progress).Execute(lastDir, cancellationToken);
    }

    /// <summary>One run's mutable state.</summary>
    private sealed class Run(MambaADModel model, CheckpointInfo info, Dataset dataset, string runDir, IProgress<TrainingProgress>? progress)
    {
        private CheckpointInfo _info = info;
        private readonly TrainingOptions _o = info.Training!.Options;
        private double? _bestMad = info.Training!.Kind == CheckpointKind.Last ? ReadBest(runDir) : null;

        public TrainResult Execute(string? resumeFrom, CancellationToken ct)
        {
            var device = new Device(_o.Device);
            model.to(device);
            var loader = new BatchLoader(dataset.Train, new LoaderOptions(_o.BatchSize, model.Config.ImageSize, _info.Normalization,
                Shuffle: true, Seed: _o.Seed, DropLast: true, Workers: _o.Workers));
            if (loader.BatchesPerEpoch == 0)
                throw new MambaADException($"{dataset.Root}: {dataset.Train.Count} training images are fewer than one batch of {_o.BatchSize}; lower the batch size", nameof(TrainingOptions.BatchSize));
            int perEpoch = loader.BatchesPerEpoch;
            long total = _o.Iterations ?? (long)_o.Epochs * perEpoch;
            int epochs = (int)((total + perEpoch - 1) / perEpoch);
            long decayAt = (long)Math.Round(_o.LrDecayAt * total);

            var (trainable, optimizer) = BuildOptimizer();
            using var _opt = optimizer;
            var s = _info.Training!;
            if (resumeFrom is not null)
            {
                optimizer.load_state_dict(Path.Combine(resumeFrom, OptimizerFile));
                var rng = PyTorchFile.Read(Path.Combine(resumeFrom, RngFile), "RNG state");
                set_rng_state((Tensor)rng["rng"]!);
                PyTorchFile.DisposeAll(rng);
                TrimMetrics(s.Iteration);
            }
            long iteration = s.Iteration;
            int startEpoch = s.Epoch, startBatch = s.BatchInEpoch;
            TestReport? lastTest = null;
            var clock = Stopwatch.StartNew();
            long clockStartIteration = iteration;
            (long Iterations, double Seconds)? probe = null; // where the time-budget speed measurement starts

            for (int epoch = startEpoch; epoch < epochs && iteration < total; epoch++)
            {
                double lossSum = 0;
                int lossCount = 0, batchIndex = epoch == startEpoch ? startBatch : 0;
                model.train();
                foreach (var batch in loader.Epoch(epoch, ct, batchIndex))
                {
                    if (iteration >= total) break;
                    double lr = iteration < decayAt ? _o.LearningRate : _o.LearningRate * _o.LrDecayFactor;
                    double loss = Step(batch, optimizer, trainable, lr, device);
                    if (!double.IsFinite(loss))
                        throw new MambaADException($"the loss became {loss} at iteration {iteration + 1} (epoch {epoch + 1}); training stopped. " +
                            $"The last good checkpoint is {RunFolder.Of(runDir, CheckpointKind.Last)} (iteration {_info.Training!.Iteration}); try a lower learning rate", nameof(TrainingOptions.LearningRate));
                    iteration++;
                    batchIndex++;
                    if (_o.TimeLimit is { } limit && iteration < decayAt && RefitDue(iteration - clockStartIteration))
                    {
                        // Fit the plan into the time budget at the speed measured so far (after the first, warm-up
                        // iterations), again every few iterations until the decay starts, so that a machine whose load
                        // changes still ends on time. The decay point (spec §13) stays at 80 % of the new total.
                        double elapsed = clock.Elapsed.TotalSeconds;
                        long done = iteration - clockStartIteration;
                        probe ??= (done, elapsed);
                        double perIteration = done > probe.Value.Iterations
                            ? (elapsed - probe.Value.Seconds) / (done - probe.Value.Iterations)
                            : elapsed / done;
                        long fits = iteration + (long)Math.Max(0, (limit.TotalSeconds - elapsed) / perIteration);
                        long planned = Math.Max(iteration, Math.Min(_o.Iterations ?? (long)_o.Epochs * perEpoch, fits));
                        if (planned != total)
                        {
                            total = planned;
                            epochs = (int)((total + perEpoch - 1) / perEpoch);
                            decayAt = Math.Max(iteration, (long)Math.Round(_o.LrDecayAt * total));
                            progress?.Report(new TrainingProgress(TrainingPhase.Train, epoch + 1, epochs, iteration, total, null, 0, null,
                                $"time budget {limit.TotalMinutes:F1} min: {perIteration:F2} s per iteration → {total} iterations ({epochs} epochs)"));
                        }
                    }
                    lossSum += loss;
                    lossCount++;
                    double ips = (iteration - clockStartIteration) * _o.BatchSize / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                    var eta = TimeSpan.FromSeconds((total - iteration) * _o.BatchSize / Math.Max(1e-9, ips));
                    progress?.Report(new TrainingProgress(TrainingPhase.Train, epoch + 1, epochs, iteration, total, lossSum / lossCount, ips, eta, null, loss));
                    if (ct.IsCancellationRequested)
                    {
                        SaveLast(epoch, batchIndex, iteration, total, lossSum / lossCount, optimizer);
                        return Result(lastTest, completed: false);
                    }
                }
                if (ct.IsCancellationRequested && iteration < total)
                {
                    SaveLast(epoch, batchIndex, iteration, total, lossCount > 0 ? lossSum / lossCount : null, optimizer);
                    return Result(lastTest, completed: false);
                }
                double? meanLoss = lossCount > 0 ? lossSum / lossCount : null;
                AppendMetrics(new { @event = "train", epoch = epoch + 1, iteration, loss = meanLoss, lr = iteration - 1 < decayAt ? _o.LearningRate : _o.LearningRate * _o.LrDecayFactor,
                    images_per_s = Math.Round((iteration - clockStartIteration) * _o.BatchSize / Math.Max(1e-9, clock.Elapsed.TotalSeconds), 2) });
                bool end = epoch + 1 == epochs || iteration >= total;
                if (end || _o.IsTestEpoch(epoch + 1, epochs))
                {
                    lastTest = TestNow(epoch + 1, epochs, iteration, total, ct);
                    SaveLast(epoch + 1, 0, iteration, total, meanLoss, optimizer, lastTest);
                }
            }
            progress?.Report(new TrainingProgress(TrainingPhase.Done, epochs, epochs, iteration, total, null, 0, TimeSpan.Zero, null));
            return Result(lastTest, completed: true);
        }

        private (List<Parameter> Trainable, OptimizerHelper Optimizer) BuildOptimizer()
        {
            // Spec §13: weight decay on every trainable tensor with ndim > 1 whose name does not end in ".bias".
            var named = StateDict.Ordered(model).Where(e => e.Tensor is Parameter { requires_grad: true }).ToList();
            var byDecay = named.ToLookup(e => e.Tensor.dim() > 1 && !e.Name.EndsWith(".bias"), e => (Parameter)e.Tensor);
            var decay = byDecay[true].ToList();
            var noDecay = byDecay[false].ToList();
            var groups = new List<AdamW.ParamGroup>
            {
                new(decay, new AdamW.Options { LearningRate = _o.LearningRate, weight_decay = _o.WeightDecay }),
                new(noDecay, new AdamW.Options { LearningRate = _o.LearningRate, weight_decay = 0 }),
            };
            var optimizer = optim.AdamW(groups, _o.LearningRate, _o.Beta1, _o.Beta2, _o.Epsilon, _o.WeightDecay, amsgrad: false);
            return (named.Select(e => (Parameter)e.Tensor).ToList(), optimizer);
        }

        private double Step(Batch batch, OptimizerHelper optimizer, List<Parameter> trainable, double lr, Device device)
        {
            using var scope = NewDisposeScope();
            int size = model.Config.ImageSize;
            var x = tensor(batch.Images, [batch.Count, 3, size, size]).to(device);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            optimizer.zero_grad();
            var loss = model.Loss(x);
            double value = loss.item<float>();
            if (!double.IsFinite(value)) return value; // nothing is stepped: the last checkpoint stays good
            loss.backward();
            nn.utils.clip_grad_norm_(trainable, _o.ClipGradNorm);
            optimizer.step();
            return value;
        }

        private TestReport? TestNow(int epoch, int epochs, long iteration, long total, CancellationToken ct)
        {
            if (dataset.Test.Count == 0) return null;
            progress?.Report(new TrainingProgress(TrainingPhase.Test, epoch, epochs, iteration, total, null, 0, null, $"testing {dataset.Test.Count} images"));
            var report = ModelTesting.Run(model, _info.Normalization, dataset.Test, new TestOptions(Workers: _o.Workers), cancellationToken: ct);
            var mean = report.Result.Mean;
            AppendMetrics(new { @event = "test", epoch, iteration, mean = MetricsDict(mean),
                classes = report.Result.Classes.ToDictionary(c => c.Key, c => MetricsDict(c.Value)) });
            progress?.Report(new TrainingProgress(TrainingPhase.Test, epoch, epochs, iteration, total, null, 0, null,
                $"epoch {epoch}: " + string.Join("  ", ClassMetrics.Names.Zip(mean.Values, (n, v) => $"{n} {(v is null ? "–" : (100 * v.Value).ToString("F1"))}"))));
            if (mean.MAD is { } mad && (_bestMad is null || 100 * mad > _bestMad))
            {
                _bestMad = 100 * mad;
                var bestInfo = _info with { Training = _info.Training! with { Kind = CheckpointKind.Best, Epoch = epoch, BatchInEpoch = 0, Iteration = iteration, MeanMad = _bestMad } };
                Checkpoint.Save(RunFolder.Of(runDir, CheckpointKind.Best), model, bestInfo);
                progress?.Report(new TrainingProgress(TrainingPhase.Checkpoint, epoch, epochs, iteration, total, null, 0, null,
                    $"best so far (mean mAD {_bestMad:F2}) → {RunFolder.Of(runDir, CheckpointKind.Best)}"));
            }
            return report;
        }

        private static Dictionary<string, double?> MetricsDict(ClassMetrics m) =>
            ClassMetrics.Names.Zip(m.Values, (n, v) => (n, v)).ToDictionary(p => p.n, p => p.v is null ? null : (double?)Math.Round(100 * p.v.Value, 4));

        private void SaveLast(int epoch, int batchInEpoch, long iteration, long total, double? loss, OptimizerHelper optimizer, TestReport? test = null)
        {
            var dir = RunFolder.Of(runDir, CheckpointKind.Last);
            Directory.CreateDirectory(dir);
            // Training state first, model.json last: a last/ folder with a model.json is complete and consistent.
            var tmp = Path.Combine(dir, $".{OptimizerFile}.{Environment.ProcessId}.tmp");
            optimizer.save_state_dict(tmp);
            File.Move(tmp, Path.Combine(dir, OptimizerFile), overwrite: true);
            using (var rng = get_rng_state()) PyTorchFile.WriteStateDict(Path.Combine(dir, RngFile), [("rng", rng)]);
            double? mad = test?.Result.Mean.MAD is { } m ? 100 * m : _info.Training!.MeanMad;
            _info = _info with { Training = _info.Training! with { Kind = CheckpointKind.Last, Epoch = epoch, BatchInEpoch = batchInEpoch, Iteration = iteration, TotalIterations = total, Loss = loss, MeanMad = mad } };
            Checkpoint.Save(dir, model, _info);
            progress?.Report(new TrainingProgress(TrainingPhase.Checkpoint, epoch, 0, iteration, total, null, 0, null, $"saved {dir} (iteration {iteration})"));
        }

        private TrainResult Result(TestReport? lastTest, bool completed)
        {
            var best = RunFolder.Of(runDir, CheckpointKind.Best);
            return new TrainResult(runDir, RunFolder.Of(runDir, CheckpointKind.Last), Directory.Exists(best) ? best : null, lastTest, completed);
        }

        private void AppendMetrics(object record)
        {
            var line = JsonSerializer.Serialize(record) + "\n";
            File.AppendAllText(Path.Combine(runDir, RunFolder.MetricsFile), line);
        }

        /// <summary>On resume, drops log lines written after the checkpoint the run continues from.</summary>
        private void TrimMetrics(long iteration)
        {
            var path = Path.Combine(runDir, RunFolder.MetricsFile);
            if (!File.Exists(path)) return;
            var keep = File.ReadAllLines(path).Where(l =>
            {
                try { return JsonDocument.Parse(l).RootElement.GetProperty("iteration").GetInt64() <= iteration; }
                catch (JsonException) { return false; }
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
