using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Bench;

/// <summary>
/// An identity autograd node that notes when the backward reaches it. Put one on a module's input and one on its
/// output, and the time between the two notes is that module's backward (libtorch's CPU engine runs the nodes one at a
/// time, latest-created first, so a module's own nodes run between its output's marker and its input's marker).
/// Benchmark-only: the forward copies the tensor (a custom node returning its input unchanged is not allowed).
/// </summary>
internal sealed class BackwardMarker : torch.autograd.SingleTensorFunction<BackwardMarker>
{
    /// <summary>Timestamps (Stopwatch ticks) of the markers the last backward reached, by id.</summary>
    public static readonly Dictionary<int, long> Reached = new();

    public override string Name => "MambaAD.Bench.BackwardMarker";

    /// <summary>x, with marker <paramref name="id"/> in its gradient's path; x itself when no gradient will flow.</summary>
    public static Tensor Mark(Tensor x, int id) => x.requires_grad ? apply(x, id) : x;

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("id", vars[1]);
        return ((Tensor)vars[0]).detach().clone();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        Reached[(int)ctx.get_data("id")] = Stopwatch.GetTimestamp();
        return [grad.alias(), null!];
    }
}
