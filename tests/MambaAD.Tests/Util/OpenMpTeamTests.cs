using MambaAD.Benchmarks;
using MambaAD.Ssm;
using MambaAD.Tests.Ssm;
using MambaAD.Util;
using static TorchSharp.torch;

namespace MambaAD.Tests.Util;

/// <summary>Our kernels' workers on libtorch's OpenMP team (Util/OpenMpTeam, Ssm/ScanWorkers).</summary>
public class OpenMpTeamTests
{
    /// <summary>If libtorch's libgomp were renamed or not found, the kernels would silently fall back to .NET's pool.</summary>
    [LinuxX64Fact]
    public void Libtorchs_libgomp_is_found_and_the_kernels_use_it()
    {
        Assert.True(OpenMpTeam.Available, "GOMP_parallel was not found in the libgomp that libtorch loaded");
        Assert.True(ScanWorkers.OnOpenMpTeam);
        Assert.Contains("libtorch's OpenMP team", ScanWorkers.Describe());   // what `mambaad info` and the bench print
    }

    [LinuxX64Fact]
    public void Each_team_thread_runs_the_work_once_the_caller_among_them()
    {
        int threads = Math.Min(2, Environment.ProcessorCount);
        var ran = new System.Collections.Concurrent.ConcurrentBag<int>();
        OpenMpTeam.Run(threads, () => ran.Add(Environment.CurrentManagedThreadId));
        Assert.Equal(threads, ran.Count);
        Assert.Equal(threads, ran.Distinct().Count());
        Assert.Contains(Environment.CurrentManagedThreadId, ran);
    }

    [LinuxX64Fact]
    public void An_exception_on_a_team_thread_reaches_the_caller_and_the_team_still_works()
    {
        int calls = 0;
        var e = Assert.Throws<InvalidDataException>(() => OpenMpTeam.Run(2, () =>
        {
            if (Interlocked.Increment(ref calls) == 1) throw new InvalidDataException("from a team thread");
        }));
        Assert.Equal("from a team thread", e.Message);
        int after = 0;
        OpenMpTeam.Run(2, () => Interlocked.Increment(ref after));
        Assert.Equal(Math.Min(2, Environment.ProcessorCount), after);
    }

    /// <summary>A garbage collection while team threads run managed code (they are libgomp's, not .NET's) must not hang.</summary>
    [LinuxX64Fact]
    public void A_garbage_collection_during_team_work_completes()
    {
        long sum = 0;
        for (int round = 0; round < 20; round++)
            OpenMpTeam.Run(2, () =>
            {
                var garbage = new List<int[]>();
                for (int i = 0; i < 200; i++) garbage.Add(new int[1000]);
                GC.Collect();
                Interlocked.Add(ref sum, garbage.Count);
            });
        Assert.Equal(20L * 200 * Math.Min(2, Environment.ProcessorCount), sum);
    }

    /// <summary>A kernel called from a team thread (nested) runs on that thread alone rather than waiting on itself.</summary>
    [LinuxX64Fact]
    public unsafe void Kernels_called_from_inside_a_team_still_finish_every_task()
    {
        var done = new int[2][];
        OpenMpTeam.Run(2, () =>
        {
            var tasks = new int[64];
            ScanWorkers.Run(tasks.Length, 0, (task, _) => tasks[task]++);
            lock (done) done[Array.IndexOf(done, null)] = tasks;
        });
        foreach (var tasks in done.Where(t => t is not null)) Assert.All(tasks, n => Assert.Equal(1, n));
    }

    /// <summary>The scan's forward and backward give the same bits on the OpenMP team as on .NET's thread pool.</summary>
    [LinuxX64Fact]
    public void The_scan_gives_the_same_bits_on_either_pool()
    {
        using var scope = NewDisposeScope();
        var inputs = ScanSampleInputs.CreateProjected(2, 8, 16, 16, 100, 4);
        var paths = SelectiveScanTests.Paths(8, 100);
        var g = randn(2, 100, 16, generator: new Generator(3));   // like y: (Bt, L, d)
        Tensor[] Run(bool team)
        {
            bool before = ScanWorkers.OnOpenMpTeam;
            try
            {
                ScanWorkers.OnOpenMpTeam = team;
                return AtThreads.Run(2, () => ProjectedScanTests.RunWithGrads(SelectiveScanCpu.Instance, inputs, g, float32, paths));
            }
            finally
            {
                ScanWorkers.OnOpenMpTeam = before;
            }
        }
        var onTeam = Run(true);
        var onPool = Run(false);
        for (int i = 0; i < onTeam.Length; i++) Close.Check(onTeam[i], onPool[i], 0, 0, $"output {i}");
    }
}
