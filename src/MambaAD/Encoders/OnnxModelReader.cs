using System.Buffers.Binary;
using System.Text;

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
/// A minimal protocol-buffers reader for ONNX files (onnx.proto field numbers): ModelProto.graph (7),
/// producer_name (2); GraphProto.node (1), initializer (5), input (11), output (12); NodeProto.input (1), output (2),
/// name (3), op_type (4), attribute (5); AttributeProto.name (1), f (2), i (3), s (4), t (5), floats (7), ints (8);
/// TensorProto.dims (1), data_type (2), float_data (4), int64_data (7), name (8), raw_data (9);
/// ValueInfoProto.name (1). Unknown fields are skipped, repeated numeric fields may be packed or not.
/// </summary>
internal static class OnnxModelReader
{
    public static OnnxGraph Read(string path) => Read(File.ReadAllBytes(path));

    public static OnnxGraph Read(byte[] model)
    {
        var r = new ProtoReader(model, 0, model.Length);
        OnnxGraph? graph = null;
        string producer = "";
        while (r.More(out int field, out int wire))
        {
            if (field == 7 && wire == 2) graph = ReadGraph(r.Sub(), producer);
            else if (field == 2 && wire == 2) producer = r.String();
            else r.Skip(wire);
        }
        if (graph is null) throw new InvalidDataException("not an ONNX model: no graph");
        return graph with { Producer = producer };
    }

    private static OnnxGraph ReadGraph(ProtoReader r, string producer)
    {
        var nodes = new List<OnnxNode>();
        var inits = new Dictionary<string, OnnxTensor>();
        var inputs = new List<string>();
        var outputs = new List<string>();
        while (r.More(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: nodes.Add(ReadNode(r.Sub())); break;
                case 5 when wire == 2: var t = ReadTensor(r.Sub()); inits[t.Name] = t; break;
                case 11 when wire == 2: inputs.Add(ReadValueInfoName(r.Sub())); break;
                case 12 when wire == 2: outputs.Add(ReadValueInfoName(r.Sub())); break;
                default: r.Skip(wire); break;
            }
        }
        return new OnnxGraph(nodes, inits, inputs, outputs, producer);
    }

    private static string ReadValueInfoName(ProtoReader r)
    {
        string name = "";
        while (r.More(out int field, out int wire))
            if (field == 1 && wire == 2) name = r.String(); else r.Skip(wire);
        return name;
    }

    private static OnnxNode ReadNode(ProtoReader r)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attrs = new Dictionary<string, OnnxAttribute>();
        string name = "", op = "";
        while (r.More(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: inputs.Add(r.String()); break;
                case 2 when wire == 2: outputs.Add(r.String()); break;
                case 3 when wire == 2: name = r.String(); break;
                case 4 when wire == 2: op = r.String(); break;
                case 5 when wire == 2: var a = ReadAttribute(r.Sub()); attrs[a.Name] = a; break;
                default: r.Skip(wire); break;
            }
        }
        return new OnnxNode(name, op, inputs.ToArray(), outputs.ToArray(), attrs);
    }

    private static OnnxAttribute ReadAttribute(ProtoReader r)
    {
        string name = "";
        float f = 0; long i = 0; string? s = null; OnnxTensor? t = null;
        var floats = new List<float>();
        var ints = new List<long>();
        while (r.More(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: name = r.String(); break;
                case 2 when wire == 5: f = r.Fixed32Float(); break;
                case 3 when wire == 0: i = (long)r.Varint(); break;
                case 4 when wire == 2: s = r.String(); break;
                case 5 when wire == 2: t = ReadTensor(r.Sub()); break;
                case 7: r.Floats(wire, floats); break;
                case 8: r.Int64s(wire, ints); break;
                default: r.Skip(wire); break;
            }
        }
        return new OnnxAttribute(name, f, i, s, t, floats.ToArray(), ints.ToArray());
    }

    private static OnnxTensor ReadTensor(ProtoReader r)
    {
        var dims = new List<long>();
        var floats = new List<float>();
        var int64s = new List<long>();
        int dataType = 0;
        string name = "";
        ReadOnlyMemory<byte> raw = default;
        while (r.More(out int field, out int wire))
        {
            switch (field)
            {
                case 1: r.Int64s(wire, dims); break;
                case 2 when wire == 0: dataType = (int)r.Varint(); break;
                case 4: r.Floats(wire, floats); break;
                case 7: r.Int64s(wire, int64s); break;
                case 8 when wire == 2: name = r.String(); break;
                case 9 when wire == 2: raw = r.Bytes(); break;
                default: r.Skip(wire); break;
            }
        }
        var span = raw.Span;
        float[]? f = null; long[]? l = null;
        if (dataType == OnnxTensor.Float)
        {
            f = floats.Count > 0 ? floats.ToArray() : new float[span.Length / 4];
            if (floats.Count == 0)
                for (int k = 0; k < f.Length; k++) f[k] = BinaryPrimitives.ReadSingleLittleEndian(span[(4 * k)..]);
        }
        else if (dataType == OnnxTensor.Int64)
        {
            l = int64s.Count > 0 ? int64s.ToArray() : new long[span.Length / 8];
            if (int64s.Count == 0)
                for (int k = 0; k < l.Length; k++) l[k] = BinaryPrimitives.ReadInt64LittleEndian(span[(8 * k)..]);
        }
        var t = new OnnxTensor(name, dims.ToArray(), dataType, f, l);
        long have = f?.Length ?? l?.Length ?? t.NumElements;
        if (have != t.NumElements) throw new InvalidDataException($"ONNX tensor '{name}' has {have} values for dims [{string.Join(",", dims)}]");
        return t;
    }

    /// <summary>A cursor over one length-delimited protobuf message.</summary>
    private sealed class ProtoReader(byte[] buffer, int start, int end)
    {
        private int _pos = start;
        private bool HasData => _pos < end;

        public bool More(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= end) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw new InvalidDataException("truncated protobuf varint");
                byte b = buffer[_pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return v;
            }
            throw new InvalidDataException("malformed protobuf varint");
        }

        private int Length()
        {
            ulong len = Varint();
            if (len > (ulong)(end - _pos)) throw new InvalidDataException("truncated protobuf field");
            return (int)len;
        }

        public ReadOnlyMemory<byte> Bytes() { int n = Length(); var m = new ReadOnlyMemory<byte>(buffer, _pos, n); _pos += n; return m; }
        public string String() => Encoding.UTF8.GetString(Bytes().Span);
        public ProtoReader Sub() { int n = Length(); var s = new ProtoReader(buffer, _pos, _pos + n); _pos += n; return s; }

        public float Fixed32Float()
        {
            if (end - _pos < 4) throw new InvalidDataException("truncated protobuf fixed32");
            float v = BinaryPrimitives.ReadSingleLittleEndian(buffer.AsSpan(_pos, 4));
            _pos += 4;
            return v;
        }

        /// <summary>A repeated float field: packed (wire 2) or one value (wire 5).</summary>
        public void Floats(int wire, List<float> into)
        {
            if (wire == 5) { into.Add(Fixed32Float()); return; }
            if (wire != 2) { Skip(wire); return; }
            var span = Bytes().Span;
            into.EnsureCapacity(into.Count + span.Length / 4);
            for (int k = 0; k + 4 <= span.Length; k += 4) into.Add(BinaryPrimitives.ReadSingleLittleEndian(span[k..]));
        }

        /// <summary>A repeated int64 field: packed (wire 2) or one varint (wire 0).</summary>
        public void Int64s(int wire, List<long> into)
        {
            if (wire == 0) { into.Add((long)Varint()); return; }
            if (wire != 2) { Skip(wire); return; }
            var sub = Sub();
            while (sub.HasData) into.Add((long)sub.Varint());
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _pos += 8; break;
                case 2: { int n = Length(); _pos += n; break; } // not `_pos += Length()`: that reads _pos before Length() moves it
                case 5: _pos += 4; break;
                default: throw new InvalidDataException($"unsupported protobuf wire type {wire}");
            }
            if (_pos > end) throw new InvalidDataException("truncated protobuf field");
        }
    }
}
