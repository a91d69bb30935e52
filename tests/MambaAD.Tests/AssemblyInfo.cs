// Tests share libtorch's global state (threads, RNG) and the machine's two cores: run them one at a time, so that
// numerical comparisons (resume reproduces a run, golden tolerances) never depend on another test's activity.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
