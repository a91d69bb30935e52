using Google.Protobuf;
using Onnx;
using static Onnx.TensorProto.Types;

namespace MambaAD.Onnx;

/// <summary>
/// An ONNX graph under construction (OnnxSharp's <see cref="GraphProto"/>): initializers, nodes whose output names are
/// generated, attributes, and the few operators whose form changed between opsets. A subgraph (a Scan body) shares
/// its parent's name counter, so every value name in the model is unique.
/// </summary>
internal sealed class GraphBuilder
{
    private readonly Counter _names;
    private readonly Dictionary<string, string> _constants = new();

    public GraphBuilder(int opset, string name) : this(opset, name, new Counter()) { }

    private GraphBuilder(int opset, string name, Counter names)
    {
        Opset = opset;
        _names = names;
        Graph = new GraphProto { Name = name };
    }

    public GraphProto Graph { get; }

    /// <summary>The default-domain opset the model imports.</summary>
    public int Opset { get; }

    /// <summary>A body graph for a Scan or Loop node of this graph.</summary>
    public GraphBuilder Subgraph(string name) => new(Opset, name, _names);

    private sealed class Counter
    {
        public int Next;
        public readonly HashSet<string> Used = [];
    }

    // ---- values ----

    /// <summary>A float32 initializer. <paramref name="name"/> is kept when unused (state_dict keys read well in a viewer).</summary>
    public string Initializer(string name, float[] data, params long[] dims)
    {
        if (data.LongLength != dims.Aggregate(1L, (a, d) => a * d))
            throw new ArgumentException($"initializer {name}: {data.Length} values for dims [{string.Join(",", dims)}]");
        return Initializer(name, data, DataType.Float, dims);
    }

    /// <summary>An int64 initializer.</summary>
    public string Initializer(string name, long[] data, params long[] dims) => Initializer(name, data, DataType.Int64, dims);

    /// <summary>An initializer of <paramref name="type"/> holding <paramref name="data"/> as its raw little-endian bytes.</summary>
    private string Initializer<T>(string name, T[] data, DataType type, long[] dims) where T : unmanaged
    {
        var t = new TensorProto { Name = Unique(name), DataType = (int)type };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        Graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>A small int64 vector constant (shapes, axes), shared by every use of the same values.</summary>
    public string Ints(params long[] values)
    {
        string key = "i64:" + string.Join(",", values);
        if (!_constants.TryGetValue(key, out var name))
            _constants[key] = name = Initializer("const_" + string.Join("_", values).Replace("-", "m"), values, values.Length);
        return name;
    }

    /// <summary>A float32 scalar constant, shared by every use of the same value.</summary>
    public string Scalar(float value)
    {
        string key = "f32:" + value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (!_constants.TryGetValue(key, out var name))
            _constants[key] = name = Initializer("const_f_" + _constants.Count, [value]);
        return name;
    }

    /// <summary>Declares a float32 graph input; a null dimension is symbolic (named <paramref name="dimParam"/>, default "batch").</summary>
    public void Input(string name, long?[] shape, string? dimParam = null) => Graph.Input.Add(ValueInfo(name, shape, dimParam));

    /// <summary>Declares a float32 graph output.</summary>
    public void Output(string name, long?[]? shape = null, string? dimParam = null) => Graph.Output.Add(ValueInfo(name, shape, dimParam));

    /// <summary>A float32 value description; <paramref name="shape"/> null leaves the rank unknown (Scan bodies).</summary>
    public static ValueInfoProto ValueInfo(string name, long?[]? shape, string? dimParam = null)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float };
        if (shape is not null)
        {
            tensor.Shape = new TensorShapeProto();
            foreach (var d in shape)
                tensor.Shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v }
                    : new TensorShapeProto.Types.Dimension { DimParam = dimParam ?? "batch" });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    /// <summary>A value name not used anywhere in the model yet: the hint itself the first time, then hint#n.</summary>
    public string Unique(string hint)
    {
        var name = hint;
        while (!_names.Used.Add(name)) name = $"{hint}#{_names.Next++}";
        return name;
    }

    // ---- nodes ----

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Op(string opType, string[] inputs, params AttributeProto[] attributes) =>
        OpN(opType, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs and returns their names.</summary>
    public string[] OpN(string opType, string[] inputs, int outputs, params AttributeProto[] attributes)
    {
        int id = _names.Next++;
        var node = new NodeProto { OpType = opType, Name = $"{opType}_{id}" };
        node.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(i => Unique(outputs == 1 ? $"{opType}_{id}" : $"{opType}_{id}:{i}")).ToArray();
        node.Output.AddRange(names);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return names;
    }

    public string Add(string a, string b) => Op("Add", [a, b]);
    public string Sub(string a, string b) => Op("Sub", [a, b]);
    public string Mul(string a, string b) => Op("Mul", [a, b]);
    public string Div(string a, string b) => Op("Div", [a, b]);
    public string MatMul(string a, string b) => Op("MatMul", [a, b]);
    public string Relu(string x) => Op("Relu", [x]);
    public string Exp(string x) => Op("Exp", [x]);

    /// <summary>SiLU x·σ(x) (ONNX has no SiLU operator before opset 24's Swish).</summary>
    public string Silu(string x) => Mul(x, Op("Sigmoid", [x]));

    public string Transpose(string x, params long[] perm) => Op("Transpose", [x], Attr.Ints("perm", perm));

    /// <summary>Reshape; 0 copies the input's dimension, −1 is inferred (the batch, with a dynamic batch).</summary>
    public string Reshape(string x, params long[] shape) => Op("Reshape", [x, Ints(shape)]);

    public string Unsqueeze(string x, params long[] axes) => Op("Unsqueeze", [x, Ints(axes)]);

    public string Gather(string x, string indices, long axis) => Op("Gather", [x, indices], Attr.Int("axis", axis));

    /// <summary>x[..., start:end] along <paramref name="axis"/>.</summary>
    public string Slice(string x, long axis, long start, long end) => Op("Slice", [x, Ints(start), Ints(end), Ints(axis)]);

    public string ReduceSum(string x, long[] axes, bool keepDims) =>
        Op("ReduceSum", [x, Ints(axes)], Attr.Int("keepdims", keepDims ? 1 : 0));

    /// <summary>ReduceMax: its axes became an input in opset 18.</summary>
    public string ReduceMax(string x, long[] axes, bool keepDims) => Opset >= 18
        ? Op("ReduceMax", [x, Ints(axes)], Attr.Int("keepdims", keepDims ? 1 : 0))
        : Op("ReduceMax", [x], Attr.Ints("axes", axes), Attr.Int("keepdims", keepDims ? 1 : 0));

    public string LayerNorm(string x, string weight, string bias, float eps) =>
        Op("LayerNormalization", [x, weight, bias], Attr.Int("axis", -1), Attr.Float("epsilon", eps));

    /// <summary>Conv over NCHW; <paramref name="bias"/> may be null.</summary>
    public string Conv(string x, string weight, string? bias, int kernel, int stride = 1, int pad = 0, int group = 1) =>
        Op("Conv", bias is null ? [x, weight] : [x, weight, bias],
            Attr.Ints("kernel_shape", kernel, kernel), Attr.Ints("strides", stride, stride),
            Attr.Ints("pads", pad, pad, pad, pad), Attr.Int("group", group));
}

/// <summary>Node attributes.</summary>
internal static class Attr
{
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Graph(string name, GraphProto graph) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph };

    public static AttributeProto Tensor(string name, TensorProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };
}
