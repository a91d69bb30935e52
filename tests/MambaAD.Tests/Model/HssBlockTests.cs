using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// In training, an HSS block runs its branch on the samples DropPath keeps and leaves the dropped ones at x. That must
/// be the spec's X + DropPath(SS2D(LN(X))) computed on the whole batch (spec §4, §6): the same mask (the same random
/// draws), the same output, and the same gradients for x and every parameter.
/// </summary>
[Collection("Torch")]
public class HssBlockTests
{
    private const int Batch = 6, Side = 4, Dim = 16;

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.2)]
    public void Training_on_the_kept_samples_equals_the_whole_batch_times_the_mask(double p)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var block = new HssBlock(Dim, Side, p);
        block.train();
        var x0 = randn(Batch, Side, Side, Dim);
        var weights = randn(Batch, Side, Side, Dim);
        long seed = SeedWithSomeDropped(p);

        manual_seed(seed);
        var (y, grads) = OutputAndGrads(block, x0, weights, x => block.call(x));
        // The reference is the spec's formula as the block computed it before: DropPath applied to the whole batch's
        // branch, its mask drawn after the branch (the same draws, since the branch draws none).
        using var reference = new DropPath(p);
        reference.train();
        manual_seed(seed);
        var (yRef, gradsRef) = OutputAndGrads(block, x0, weights,
            x => x + reference.call(block.SelfAttention.call(block.Ln1.call(x))));
        manual_seed(seed);
        using var mask = reference.Mask(x0)!;

        double scale = yRef.abs().max().item<float>();
        Assert.True((y - yRef).abs().max().item<float>() <= 1e-6 * scale, "outputs differ");
        var dropped = (mask.flatten() == 0).nonzero().flatten();
        Assert.InRange(dropped.shape[0], 1, Batch - 1);
        Assert.True((y.index_select(0, dropped) == x0.index_select(0, dropped)).all().item<bool>(), "a dropped sample's output is not x");
        Assert.Equal(gradsRef.Count, grads.Count);
        for (int i = 0; i < grads.Count; i++)
        {
            double gScale = gradsRef[i].abs().max().item<float>();
            double diff = (grads[i] - gradsRef[i]).abs().max().item<float>();
            Assert.True(diff <= 1e-5 * gScale + 1e-12, $"gradient {i} ({string.Join("×", grads[i].shape)}) differs by {diff:E2} of {gScale:E2}");
        }
    }

    [Fact]
    public void In_eval_the_block_is_x_plus_its_branch_whatever_the_rate()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(12);
        using var block = new HssBlock(Dim, Side, 0.5);
        block.eval();
        var x = randn(Batch, Side, Side, Dim);
        var expected = x + block.SelfAttention.call(block.Ln1.call(x));
        Assert.True((block.call(x) == expected).all().item<bool>());
    }

    /// <summary>A seed whose first mask keeps some samples and drops others (the case that takes the subset path).</summary>
    private static long SeedWithSomeDropped(double p)
    {
        using var probe = new DropPath(p);
        probe.train();
        for (long seed = 1; ; seed++)
        {
            manual_seed(seed);
            using var x = empty(Batch, Side, Side, Dim);
            using var mask = probe.Mask(x)!;
            long kept = mask.count_nonzero().item<long>();
            if (kept > 0 && kept < Batch) return seed;
        }
    }

    /// <summary>The output of <paramref name="f"/> on a fresh leaf copy of x0, and the gradients of Σ weights·y for x
    /// and the block's parameters (in parameter order).</summary>
    private static (Tensor Y, List<Tensor> Grads) OutputAndGrads(HssBlock block, Tensor x0, Tensor weights, Func<Tensor, Tensor> f)
    {
        block.zero_grad();
        var x = x0.detach().clone().requires_grad_(true);
        var y = f(x);
        (y * weights).sum().backward();
        var grads = new List<Tensor> { x.grad!.clone() };
        grads.AddRange(block.parameters().Select(q => q.grad!.clone()));
        return (y.detach(), grads);
    }
}
