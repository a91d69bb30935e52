using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace MambaAD.Encoders;

/// <summary>A tensor of an ONNX graph (an initializer or a Constant's value). Only float and int64 data are decoded.</summary>
internal sealed record OnnxTensor(string Name, long[] Dims, int DataType, float[]? Floats, long[]? Int64s)
{
    public const int Float = 1, Int64 = 7;
    public long NumElements => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>One node attribute; only the fields this project needs (f, i, s, t, floats, ints).</summary>
internal sealed record OnnxAttribute(string Name, float F, long I, string? S, OnnxTensor? T, float[] Floats, long[] Ints);

/// <summary>One graph node: operator, input and output value names, attributes.</summary>
internal sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes);

/// <summary>The parts of an ONNX ModelProto's main graph that the embedded encoder needs.</summary>
internal sealed record OnnxGraph(IReadOnlyList<OnnxNode> Nodes, IReadOnlyDictionary<string, OnnxTensor> Initializers,
    IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Producer);

/// <summary>
/// Reads an ONNX file through OnnxSharp's generated message classes (Google.Protobuf) — the same package the exporter
/// writes with — into the plain records above, decoding tensors stored as float_data / int64_data or raw_data.
/// </summary>
internal static class OnnxModelReader
{
    public static OnnxGraph Read(string path) => Read(File.ReadAllBytes(path));

    /// <exception cref="InvalidDataException">When the bytes are not an ONNX model or a tensor's data does not fit its dims.</exception>
    public static OnnxGraph Read(byte[] model)
    {
        ModelProto proto;
        try { proto = ModelProto.Parser.ParseFrom(model); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"not an ONNX model ({e.Message})", e); }
        var graph = proto.Graph ?? throw new InvalidDataException("not an ONNX model: no graph");
        return new OnnxGraph(
            graph.Node.Select(ReadNode).ToList(),
            graph.Initializer.Select(ReadTensor).GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.Last()),
            graph.Input.Select(v => v.Name).ToList(),
            graph.Output.Select(v => v.Name).ToList(),
            proto.ProducerName);
    }

    private static OnnxNode ReadNode(NodeProto n) =>
        new(n.Name, n.OpType, n.Input.ToArray(), n.Output.ToArray(),
            n.Attribute.GroupBy(a => a.Name).ToDictionary(g => g.Key, g => ReadAttribute(g.Last())));

    private static OnnxAttribute ReadAttribute(AttributeProto a) =>
        new(a.Name, a.F, a.I, a.S.IsEmpty ? null : a.S.ToStringUtf8(), a.T is null ? null : ReadTensor(a.T), a.Floats.ToArray(), a.Ints.ToArray());

    private static OnnxTensor ReadTensor(TensorProto t)
    {
        var raw = t.RawData.Span;
        float[]? f = null;
        long[]? l = null;
        if (t.DataType == OnnxTensor.Float)
        {
            f = t.FloatData.Count > 0 || raw.IsEmpty ? t.FloatData.ToArray() : new float[raw.Length / 4];
            if (t.FloatData.Count == 0)
                for (int k = 0; k < f.Length; k++) f[k] = BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * k)..]);
        }
        else if (t.DataType == OnnxTensor.Int64)
        {
            l = t.Int64Data.Count > 0 || raw.IsEmpty ? t.Int64Data.ToArray() : new long[raw.Length / 8];
            if (t.Int64Data.Count == 0)
                for (int k = 0; k < l.Length; k++) l[k] = BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * k)..]);
        }
        var tensor = new OnnxTensor(t.Name, t.Dims.ToArray(), t.DataType, f, l);
        long have = f?.Length ?? l?.Length ?? tensor.NumElements;
        if (have != tensor.NumElements)
            throw new InvalidDataException($"ONNX tensor '{t.Name}' has {have} values for dims [{string.Join(",", t.Dims)}]");
        return tensor;
    }
}
