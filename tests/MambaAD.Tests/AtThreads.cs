using static TorchSharp.torch;

namespace MambaAD.Tests;

/// <summary>
/// Runs a function with libtorch's thread count, and so the kernels' workers (ScanWorkers), set to n, and restores the
/// count after: for the tests that a result is the same bits at any thread count.
/// </summary>
public static class AtThreads
{
    public static T Run<T>(int n, Func<T> f)
    {
        int before = get_num_threads();
        try
        {
            set_num_threads(n);
            return f();
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
