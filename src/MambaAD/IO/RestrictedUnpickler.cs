using System.Buffers.Binary;
using System.Collections;
using System.Text;

namespace MambaAD.IO;

/// <summary>
/// A pickle machine for weights files, with the discipline of PyTorch's <c>torch.load(weights_only=True)</c>: it
/// knows the instructions <c>torch.save</c> writes (protocols 2–5) and nothing that runs or builds arbitrary objects;
/// a global (a Python name such as <c>torch._utils._rebuild_tensor_v2</c>) is accepted only from an allow-list, and a
/// call only to an allowed function, which the caller implements. Every length is checked against the bytes that
/// remain before anything is allocated. Values are plain .NET objects: string, long, double, bool, null, byte[],
/// object?[] (tuple), List&lt;object?&gt; (list), Hashtable (dict), and whatever the callbacks return.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>A Python global that the allow-list accepts: a class used as a value (a storage type) or a function to call.</summary>
    public sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    private readonly byte[] _data;
    private readonly string _name;
    private readonly IReadOnlySet<string> _classes;
    private readonly IReadOnlyDictionary<string, Func<object?[], object?>> _functions;
    private readonly Func<object?[], object?> _persistentLoad;
    private int _pos;

    /// <param name="data">The pickle.</param>
    /// <param name="name">Names the file in errors.</param>
    /// <param name="classes">Globals allowed as values ("module.Name").</param>
    /// <param name="functions">Globals allowed as callables of REDUCE, and what a call returns.</param>
    /// <param name="persistentLoad">Resolves a persistent id (a tuple) to its object, e.g. a storage of the archive.</param>
    public RestrictedUnpickler(byte[] data, string name, IReadOnlySet<string> classes,
        IReadOnlyDictionary<string, Func<object?[], object?>> functions, Func<object?[], object?> persistentLoad)
    {
        _data = data;
        _name = name;
        _classes = classes;
        _functions = functions;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Runs the pickle and returns its top object.</summary>
    /// <exception cref="MambaADException">An instruction, global or length that a weights file does not have.</exception>
    public object? Load()
    {
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();
        while (true)
        {
            if (_pos >= _data.Length) throw Bad("ends before its STOP instruction (truncated)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: ReadBytes(1); break;                                  // PROTO
                case 0x95: ReadBytes(8); break;                                  // FRAME: a length hint
                case (byte)'.':                                                  // STOP
                    if (stack.Count != 1 || marks.Count != 0) throw Bad("ends with an unbalanced stack");
                    return stack[0];
                case (byte)'(': marks.Push(stack.Count); break;                  // MARK
                case (byte)'}': stack.Add(new Hashtable()); break;               // EMPTY_DICT
                case (byte)']': stack.Add(new List<object?>()); break;           // EMPTY_LIST
                case (byte)')': stack.Add(Array.Empty<object?>()); break;        // EMPTY_TUPLE
                case (byte)'t': stack.Add(PopMark(stack, marks).ToArray()); break; // TUPLE
                case 0x85: stack.Add(new[] { Pop(stack) }); break;               // TUPLE1
                case 0x86: { var b = Pop(stack); var a = Pop(stack); stack.Add(new[] { a, b }); break; }           // TUPLE2
                case 0x87: { var c = Pop(stack); var b = Pop(stack); var a = Pop(stack); stack.Add(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'l': stack.Add(PopMark(stack, marks)); break;         // LIST
                case (byte)'d': { var items = PopMark(stack, marks); var d = new Hashtable(); SetItems(d, items); stack.Add(d); break; } // DICT
                case (byte)'s': { var v = Pop(stack); var k = Pop(stack); SetItems(Top<Hashtable>(stack, "SETITEM"), [k, v]); break; }
                case (byte)'u': { var items = PopMark(stack, marks); SetItems(Top<Hashtable>(stack, "SETITEMS"), items); break; }
                case (byte)'a': { var v = Pop(stack); Top<List<object?>>(stack, "APPEND").Add(v); break; }
                case (byte)'e': { var items = PopMark(stack, marks); Top<List<object?>>(stack, "APPENDS").AddRange(items); break; }
                case (byte)'0': Pop(stack); break;                               // POP
                case (byte)'1': PopMark(stack, marks); break;                    // POP_MARK
                case (byte)'2': stack.Add(Peek(stack)); break;                   // DUP
                case (byte)'q': memo[ReadBytes(1)[0]] = Peek(stack); break;      // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))] = Peek(stack); break; // LONG_BINPUT
                case 0x94: memo[memo.Count] = Peek(stack); break;                // MEMOIZE
                case (byte)'h': stack.Add(Get(memo, ReadBytes(1)[0])); break;    // BINGET
                case (byte)'j': stack.Add(Get(memo, BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;       // BININT
                case (byte)'K': stack.Add((long)ReadBytes(1)[0]); break;         // BININT1
                case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;      // BININT2
                case 0x8a: stack.Add(Long(ReadBytes(ReadBytes(1)[0]))); break;  // LONG1
                case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;               // BINFLOAT
                case (byte)'N': stack.Add(null); break;                          // NONE
                case 0x88: stack.Add(true); break;                               // NEWTRUE
                case 0x89: stack.Add(false); break;                              // NEWFALSE
                case 0x8c: stack.Add(Encoding.UTF8.GetString(ReadBytes(ReadBytes(1)[0]))); break;                    // SHORT_BINUNICODE
                case (byte)'X': stack.Add(Encoding.UTF8.GetString(ReadBytes(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))))); break; // BINUNICODE
                case 0x8d: stack.Add(Encoding.UTF8.GetString(ReadBytes(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8))))); break;     // BINUNICODE8
                case (byte)'U': stack.Add(Encoding.Latin1.GetString(ReadBytes(ReadBytes(1)[0]))); break;            // SHORT_BINSTRING
                case (byte)'T': stack.Add(Encoding.Latin1.GetString(ReadBytes(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))))); break; // BINSTRING
                case (byte)'C': stack.Add(ReadBytes(ReadBytes(1)[0])); break;   // SHORT_BINBYTES
                case (byte)'B': stack.Add(ReadBytes(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // BINBYTES
                case 0x8e: stack.Add(ReadBytes(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))); break;     // BINBYTES8
                case (byte)'c': stack.Add(Resolve(ReadLine(), ReadLine())); break; // GLOBAL
                case 0x93:                                                       // STACK_GLOBAL
                {
                    var name = Pop(stack) as string;
                    var module = Pop(stack) as string;
                    if (name is null || module is null) throw Bad("has a STACK_GLOBAL without module and name strings");
                    stack.Add(Resolve(module, name));
                    break;
                }
                case (byte)'R':                                                  // REDUCE
                {
                    var args = Pop(stack) as object?[] ?? throw Bad("calls a function without an argument tuple");
                    var callable = Pop(stack) as Global ?? throw Bad("calls something that is not an allowed function");
                    if (!_functions.TryGetValue(callable.ToString(), out var call))
                        throw Bad($"calls {callable}, which a weights file has no need of");
                    stack.Add(call(args));
                    break;
                }
                case (byte)'b':                                                  // BUILD: sets an object's state
                {
                    var state = Pop(stack);
                    var target = Peek(stack);
                    // An OrderedDict's state is its attributes (the state_dict's _metadata): not needed, left out.
                    if (target is not Hashtable || state is not (Hashtable or object?[] or null))
                        throw Bad("sets the state of an object that a weights file does not have");
                    break;
                }
                case (byte)'Q': stack.Add(_persistentLoad(Pop(stack) as object?[] ?? throw Bad("has a persistent id that is not a tuple"))); break; // BINPERSID
                default:
                    throw Bad($"uses the pickle instruction 0x{op:x2}, which weights files do not (it can build arbitrary objects, or the file is corrupt)");
            }
        }
    }

    private object Resolve(string module, string name)
    {
        var global = new Global(module, name);
        if (_classes.Contains(global.ToString()) || _functions.ContainsKey(global.ToString())) return global;
        throw Bad($"refers to the Python object {Clip(global.ToString())}, which a weights file has no need of; only tensors and plain containers are read (as torch.load(weights_only=True))");
    }

    private void SetItems(Hashtable d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Bad("has a dict with a key without a value");
        for (int i = 0; i < items.Count; i += 2)
        {
            if (items[i] is not (string or long or bool or double))
                throw Bad($"has a dict key of type {items[i]?.GetType().Name ?? "None"}; weights files key by names and numbers");
            d[items[i]!] = items[i + 1];
        }
    }

    private byte[] ReadBytes(ulong n)
    {
        if (n > (ulong)(_data.Length - _pos)) throw Bad($"declares {n} bytes where {_data.Length - _pos} remain (truncated or corrupt)");
        var b = _data.AsSpan(_pos, (int)n).ToArray();
        _pos += (int)n;
        return b;
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Bad("has an unreadable GLOBAL instruction");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private long Long(byte[] bytes)
    {
        if (bytes.Length > 8) throw Bad($"holds an integer of {bytes.Length} bytes; weights files need at most 8");
        if (bytes.Length == 0) return 0;
        long v = 0;
        for (int i = bytes.Length - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        int unused = 64 - 8 * bytes.Length;
        return unused == 0 ? v : (v << unused) >> unused; // sign-extend two's complement
    }

    private object? Pop(List<object?> stack)
    {
        if (stack.Count == 0) throw Bad("pops an empty stack (corrupt)");
        var v = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return v;
    }

    private object? Peek(List<object?> stack) =>
        stack.Count > 0 ? stack[^1] : throw Bad("reads an empty stack (corrupt)");

    private T Top<T>(List<object?> stack, string op) where T : class =>
        Peek(stack) as T ?? throw Bad($"has {op} on a {Peek(stack)?.GetType().Name ?? "None"}");

    private List<object?> PopMark(List<object?> stack, Stack<int> marks)
    {
        if (marks.Count == 0) throw Bad("has no MARK for a collection (corrupt)");
        int at = marks.Pop();
        if (at > stack.Count) throw Bad("has a MARK below the stack (corrupt)");
        var items = stack.GetRange(at, stack.Count - at);
        stack.RemoveRange(at, stack.Count - at);
        return items;
    }

    private object? Get(Dictionary<long, object?> memo, long key) =>
        memo.TryGetValue(key, out var v) ? v : throw Bad($"refers to memo entry {key}, which was never stored (corrupt)");

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";

    /// <summary>An error about the pickle, naming the file.</summary>
    public MambaADException Bad(string what) => new($"{_name} {what}");
}
