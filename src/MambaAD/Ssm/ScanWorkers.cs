using MambaAD.Util;

namespace MambaAD.Ssm;

/// <summary>
/// The scan kernels' task pool: tasks 0…count−1 run on <see cref="Threads"/> workers (the calling thread and
/// count−1 others) that take the next task index from a shared counter, each with its own scratch buffer.
/// Tasks own disjoint outputs, so no locks and deterministic results. The other workers are libtorch's OpenMP
/// threads where libgomp is loaded (<see cref="OpenMpTeam"/>: they are spinning right after libtorch's operation that
/// came before), else .NET's thread pool.
/// </summary>
internal static unsafe class ScanWorkers
{
    /// <summary>libtorch's thread count, capped at the machine's processors.</summary>
    public static int Threads => Math.Max(1, Math.Min(TorchSharp.torch.get_num_threads(), Environment.ProcessorCount));

    /// <summary>Whether the workers are libtorch's OpenMP team (default where available) or .NET's thread pool.</summary>
    internal static bool OnOpenMpTeam { get; set; } = OpenMpTeam.Available;

    /// <summary>For <c>mambaad info</c> and the bench's record: the kernels' vector width and where their workers run.</summary>
    public static string Describe() =>
        $"{(ScanKernels.HardwareWidth > 1 ? $"C# SIMD, {ScanKernels.HardwareWidth} lanes" : "C# scalar (no 256-bit vectors here)")}, {Threads} workers on {(OnOpenMpTeam ? "libtorch's OpenMP team" : ".NET's thread pool")}";

    public delegate void TaskBody(int task, float* scratch);

    /// <summary>
    /// Runs <paramref name="body"/> for every task; each worker's scratch holds <paramref name="scratchFloats"/> floats,
    /// 64-byte aligned (<see cref="ScratchBuffer"/>), allocated before the tasks, never inside the hot loops.
    /// </summary>
    public static void Run(int count, long scratchFloats, TaskBody body)
    {
        int workers = Math.Min(Threads, count);
        int next = -1;
        void Worker()
        {
            float* buf = ScratchBuffer.ForThisThread(scratchFloats);
            uint mxcsr = FlushToZero.Enter();   // decaying states pass through subnormals (FlushToZero)
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count) body(i, buf);
            }
            finally
            {
                FlushToZero.Leave(mxcsr);
            }
        }
        if (workers <= 1) { Worker(); return; }
        if (OnOpenMpTeam) { OpenMpTeam.Run(workers, Worker); return; }
        var threads = new Task[workers - 1];
        for (int i = 0; i < threads.Length; i++) threads[i] = Task.Run(Worker);
        Worker();
        Task.WaitAll(threads);
    }
}
