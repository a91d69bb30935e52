using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Training;

/// <summary>Train, test, calibrate and predict from C#: <c>dotnet run --project examples/QuickStart -- DATA RUN IMAGE</c>.</summary>
public static class QuickStart
{
    public static void Main(string[] args) => Run(args[0], args[1], args[2]);

    // README: begin
    public static Prediction Run(string dataRoot, string runDir, string image, int iterations = 1000)
    {
        // One model for every class of the dataset (its layout is detected), on the embedded ImageNet ResNet18.
        var config = new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64 };
        var options = new TrainingOptions { Iterations = iterations, BatchSize = 8 };
        var run = Trainer.Train(new TrainRequest(dataRoot, runDir, config, "embedded", options));

        // The seven metrics per class, and thresholds chosen on the test split, stored with the checkpoint.
        using (var predictor = Predictor.Load(run.LastCheckpoint))
        {
            var test = ModelTesting.Run(predictor, Dataset.Open(dataRoot).Test);
            Console.Write(test.Result.ToTable());
            Checkpoint.SetThresholds(run.LastCheckpoint, Calibration.Choose(test));
        }

        // An image's score, verdict and anomaly map (Map: ImageSize² floats, row-major).
        using var calibrated = Predictor.Load(run.LastCheckpoint);
        var p = calibrated.Predict(image);
        Console.WriteLine($"{image}: score {p.Score:F4}, anomalous {p.IsAnomalous}");
        return p;
    }
    // README: end
}
