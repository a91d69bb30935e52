using MambaAD.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Encoders;

public class ResNetEncoderTests
{
    [GoldenFact]
    public void Resnet34StateDictEqualsOfficialKeysInOrderShapeAndDtype()
    {
        var expected = File.ReadLines(SharedData.Golden("keys.txt"))
            .Where(l => l.StartsWith("net_t.", StringComparison.Ordinal))
            .Select(l => l.Split('\t'))
            .Select(p => $"{p[0]["net_t.".Length..]}\t{p[1]}\t{p[2]}")
            .ToList();
        using var enc = new ResNetEncoder(Backbone.ResNet34);
        var actual = enc.state_dict()
            .Select(kv => $"{kv.Key}\t{MambaAD.IO.StateDict.PythonShape(kv.Value.shape)}\t{MambaAD.IO.StateDict.PythonDtype(kv.Value.dtype)}")
            .ToList();
        Assert.Equal(174, expected.Count);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(Backbone.ResNet34, 8_170_304L)]
    [InlineData(Backbone.ResNet18, 2_782_784L)]
    public void ParameterCountUpToLayer3(Backbone backbone, long count)
    {
        using var enc = new ResNetEncoder(backbone);
        Assert.Equal(count, enc.parameters().Sum(p => p.numel()));
        Assert.Equal(backbone, enc.Backbone);
        Assert.Equal(new[] { 64, 128, 256 }, enc.Descriptor.Channels);
    }

    [Fact]
    public void BackbonesAreFoundByTheirNamesOnly()
    {
        Assert.Equal(Backbone.ResNet34, EncoderDescriptor.Find("resnet34"));
        Assert.Equal(Backbone.ResNet18, EncoderDescriptor.Find("ResNet18"));
        Assert.Null(EncoderDescriptor.Find("resnet50"));
        Assert.Equal("resnet18, resnet34", EncoderDescriptor.Names);
    }

    [Fact]
    public void OutputShapes()
    {
        using var enc = new ResNetEncoder(Backbone.ResNet18);
        using var x = randn(2, 3, 256, 256);
        var f = enc.call(x);
        Assert.Equal(new long[] { 2, 64, 64, 64 }, f[0].shape);
        Assert.Equal(new long[] { 2, 128, 32, 32 }, f[1].shape);
        Assert.Equal(new long[] { 2, 256, 16, 16 }, f[2].shape);
        foreach (var t in f) t.Dispose();
    }

    [Fact]
    public void FrozenAlwaysEvalAndDetached()
    {
        using var enc = new ResNetEncoder(Backbone.ResNet18);
        // Non-trivial running statistics, so batch statistics would give a different answer.
        using (no_grad())
            foreach (var (name, b) in enc.named_buffers())
                if (name.EndsWith("running_mean")) b.uniform_(-0.5, 0.5);
                else if (name.EndsWith("running_var")) b.uniform_(0.5, 2.0);
        Assert.All(enc.parameters(), p => Assert.False(p.requires_grad));

        using var x = randn(2, 3, 64, 64).requires_grad_(true);
        enc.eval();
        var evalOut = enc.call(x);
        enc.train();
        Assert.False(enc.training);
        Assert.All(enc.modules(), m => Assert.False(m.training));
        var trainOut = enc.call(x);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(evalOut[i].allclose(trainOut[i], 0, 0), $"F{i + 1} differs after train()");
            Assert.False(trainOut[i].requires_grad);
        }
        Assert.All(enc.parameters(), p => Assert.False(p.requires_grad));
        foreach (var t in evalOut.Concat(trainOut)) t.Dispose();
    }

    /// <summary>A parent's train() reaches the encoder through TorchSharp's recursion, and the override holds.</summary>
    [Fact]
    public void StaysInEvalInsideAParentModule()
    {
        using var parent = new Parent();
        parent.train();
        Assert.True(parent.training);
        Assert.All(parent.net_t.modules().Prepend(parent.net_t), m => Assert.False(m.training));
    }

    private sealed class Parent : nn.Module<Tensor, Tensor[]>
    {
#pragma warning disable IDE1006
        public readonly ResNetEncoder net_t = new(Backbone.ResNet18);
#pragma warning restore IDE1006
        public Parent() : base("Parent") => RegisterComponents();
        public override Tensor[] forward(Tensor x) => net_t.call(x);
    }
}
