using MambaAD.Checkpoints;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// kill -9 at every step of a save (through the crash seam, <c>MAMBAAD_TEST_CRASH_AT</c>), at random moments, and a
/// save that meets a full disk (a file-size limit): after each, the run folder holds whole checkpoints only, the next
/// start recovers or cleans what the kill left, and the run resumed to its end has the uninterrupted run's weights.
/// The chain keeps its encoder features in the file (a memory budget too small for them): no kill leaves that file in
/// the run folder, and the file-size limit stops the file at its first batch while the run goes on to the save.
/// </summary>
[Collection("Reliability")]
public sealed class CrashTests(TrainingRunFixture run)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    /// <summary>What happens to one process of the chain.</summary>
    private sealed record Step(string What, string? CrashAt = null, int? KillAfterMs = null, long? FileSizeLimitKb = null);

    [Fact]
    public void Kills_at_every_step_of_a_save_and_a_full_disk_leave_a_run_that_resumes_to_the_uninterrupted_weights()
    {
        var dir = run.NewRunDir("crashes");
        // Each process resumes the run (the first starts it) and dies where its step says. Saves happen at iterations
        // 4, 8 and 12 (best/ first when the test improved, then last/); a kill before the swap loses that save, one
        // after it keeps it.
        Step[] chain =
        [
            new("kill right after last/ of iteration 4 is swapped in", CrashAt: "last:swapped"),
            new("kill right after the save of iteration 8 starts", CrashAt: "last:begin"),
            new("kill after optimizer.bin is written", CrashAt: "last:optimizer"),
            new("kill after model.pth is written", CrashAt: "last:model"),
            new("kill after model.json, before anything is flushed", CrashAt: "last:written"),
            new("kill after the new set is flushed, before the swap", CrashAt: "last:staged"),
            new("a full disk while saving (file-size limit 512 KB)", FileSizeLimitKb: 512),
            new("kill between the two renames of the swap", CrashAt: "last:old-moved"),
            new("kill at a random moment", KillAfterMs: 2200),
            new("kill at a random moment", KillAfterMs: 900),
            new("kill between the renames of a best/ save, if one happens", CrashAt: "best:old-moved"),
            new("kill after the final save is swapped in", CrashAt: "last:swapped"),
            new("kill at a random moment", KillAfterMs: 3500),
        ];
        var rng = new Random(20251201);
        var log = new List<string>();
        int killed = 0;
        for (int i = 0; i < chain.Length; i++)
        {
            var step = chain[i];
            string[] args = i == 0 ? [.. run.TrainArgs(dir), "--feature-cache", "0.000001"] : TrainingRunFixture.ResumeArgs(dir);
            var env = step.CrashAt is { } at ? new Dictionary<string, string> { ["MAMBAAD_TEST_CRASH_AT"] = at } : null;
            using var p = CliProcess.Start(args, env, step.FileSizeLimitKb);
            if (step.KillAfterMs is { } ms)
            {
                Assert.True(p.WaitForLine(l => l.StartsWith("resuming "), Limit), p.Transcript());
                Thread.Sleep(ms + rng.Next(600));
                try { p.Signal(CliProcess.SIGKILL); } catch (Xunit.Sdk.EqualException) { /* it had ended by itself */ }
            }
            int code = p.WaitForExit(Limit);
            long at_ = File.Exists(Path.Combine(dir, "last", Checkpoint.InfoFile)) ? TrainingRunFixture.State(dir).Iteration : -1;
            log.Add($"{i + 1}. {step.What}: exit {code}, last/ at iteration {at_}");
            // Whatever a kill hit, no stack trace ever reached the terminal, and the feature file had no name to leave.
            Assert.DoesNotContain(p.Stderr, l => l.TrimStart().StartsWith("at ") || l.Contains("Unhandled exception"));
            Assert.Empty(Directory.GetFiles(dir, ".encoder-features*"));
            if (i == 0) Assert.Contains(p.Stdout, l => l.Contains("kept in a temporary file"));
            if (step.FileSizeLimitKb is not null)
            {
                // One line, a non-zero exit, the previous checkpoint intact, nothing left behind.
                Assert.True(code == 2, $"full disk: exit {code}; {p.Transcript()}");
                var error = Assert.Single(p.Stderr, l => l.StartsWith("error: "));
                Assert.Contains("cannot save", error);
                Assert.Contains("size limit", error);
                Assert.Contains("could not take more", p.Transcript());   // the feature file met the limit first
                Assert.False(Directory.Exists(Path.Combine(dir, ".last.new")), "the partial set stayed on the full disk");
                TrainingRunFixture.AssertConsistent(dir);
                continue;
            }
            if (code == 137) killed++;
            else Assert.True(code == 0, $"step {i + 1} ({step.What}): exit {code}; {p.Transcript()}");
        }

        // The first start after the last kill recovers what it left; the run then ends where the uninterrupted one did.
        var (end, last) = CliProcess.Run(TrainingRunFixture.ResumeArgs(dir));
        using (last) Assert.True(end == 0, $"final resume: exit {end}; {last.Transcript()}\n{string.Join("\n", log)}");
        TrainingRunFixture.AssertConsistent(dir);
        foreach (var leftover in new[] { ".last.new", ".last.old", ".best.new", ".best.old" })
            Assert.False(Directory.Exists(Path.Combine(dir, leftover)), $"{leftover} left after a clean start");
        TrainingRunFixture.AssertSameWeights(run.Reference, dir);
        Assert.True(killed >= 8, $"only {killed} processes were killed:\n{string.Join("\n", log)}");
        // For the report: the kill points and where the run stood after each.
        Console.WriteLine(string.Join("\n", log));
    }
}
