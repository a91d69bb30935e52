using System.Text;

namespace MambaAD.Inference;

/// <summary>
/// <c>predict</c>'s <c>scores.csv</c>, written one row per input as the run goes (each row flushed to the operating
/// system as written, the file synced after each batch), so a killed run leaves every finished row. Columns:
/// <c>path,score,is_anomalous,overlay,mask,map,error</c> (RFC 4180 quoting). A resumed run keeps the rows that
/// match its inputs in order, drops a torn last line, and appends from there. A lock file beside it keeps two runs
/// from writing one folder at once.
/// </summary>
internal sealed class ScoresCsv : IDisposable
{
    /// <summary>The header line (without its newline).</summary>
    public const string Header = "path,score,is_anomalous,overlay,mask,map,error";

    private static readonly UTF8Encoding Utf8 = new(false);
    private readonly FileStream _stream, _lock;

    private ScoresCsv(FileStream stream, FileStream lockFile, int kept)
    {
        _stream = stream;
        _lock = lockFile;
        Kept = kept;
    }

    /// <summary>Rows already in the file for the first inputs (resume), which the run does not write again.</summary>
    public int Kept { get; }

    /// <summary>
    /// Opens <paramref name="path"/> for a run over <paramref name="inputs"/>: empty (with the header when
    /// <paramref name="header"/>), or with <paramref name="resume"/> keeping the complete rows already written for a
    /// prefix of the inputs.
    /// </summary>
    /// <exception cref="MambaADException">The file holds rows of other inputs, or another run is writing it.</exception>
    public static ScoresCsv Open(string path, IReadOnlyList<string> inputs, bool header, bool resume)
    {
        // An exclusive lock on a file beside it (not on scores.csv itself, which readers may open while it grows);
        // the kernel releases it when a process dies, so a killed run never blocks its resumption.
        var lockPath = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".lock");
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new MambaADException($"{path} is being written by another predict: give each shard its own --out", "OutDir");
        }
        FileStream? stream = null;
        try
        {
            stream = new FileStream(path, resume ? FileMode.OpenOrCreate : FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
            long valid = 0;
            int kept = 0;
            if (resume) (valid, kept) = Check(stream, path, inputs, header);
            stream.SetLength(valid);
            stream.Seek(valid, SeekOrigin.Begin);
            var csv = new ScoresCsv(stream, lockFile, kept);
            if (valid == 0 && header) csv.WriteLine(Header);
            return csv;
        }
        catch
        {
            stream?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>Appends one row and hands it to the operating system (a killed process keeps it).</summary>
    public void Append(string path, double? score, bool? isAnomalous, string? overlay, string? mask, string? map, string? error)
    {
        var fields = new[]
        {
            path, score?.ToString("G9", System.Globalization.CultureInfo.InvariantCulture) ?? "",
            isAnomalous is { } a ? (a ? "true" : "false") : "", overlay ?? "", mask ?? "", map ?? "", error ?? "",
        };
        WriteLine(string.Join(',', fields.Select(Quote)));
    }

    /// <summary>Makes the rows written so far durable (after each batch).</summary>
    public void Sync() => _stream.Flush(flushToDisk: true);

    /// <inheritdoc />
    public void Dispose()
    {
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        _lock.Dispose();
    }

    private void WriteLine(string line)
    {
        var bytes = Utf8.GetBytes(line + "\n");
        _stream.Write(bytes);
        _stream.Flush();
    }

    /// <summary>RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.</summary>
    internal static string Quote(string s) =>
        s.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    /// <summary>The byte length of the rows to keep and their number; throws when a complete row does not fit.</summary>
    private static (long Valid, int Kept) Check(FileStream stream, string path, IReadOnlyList<string> inputs, bool header)
    {
        using var reader = new StreamReader(stream, Utf8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        long valid = 0;
        int rows = 0, line = 0;
        foreach (var (fields, bytes) in Records(reader))
        {
            line++;
            if (line == 1 && header)
            {
                if (string.Join(',', fields) != Header)
                    throw new MambaADException($"{path}: the first line is not the header '{Header}'; it was not written by this version of predict — use another --out", "OutDir");
                valid += bytes;
                continue;
            }
            if (fields.Length != 7 || rows >= inputs.Count || fields[0] != inputs[rows])
                throw new MambaADException($"{path}: line {line} is not for this run's input {(rows < inputs.Count ? inputs[rows] : "(none left)")}: " +
                    "the file was written for other inputs or another --shard; use another --out to start afresh", "OutDir");
            valid += bytes;
            rows++;
        }
        return (valid, rows);
    }

    /// <summary>The complete records (ending in a line break outside quotes) and their byte lengths; a torn tail is left out.</summary>
    private static IEnumerable<(string[] Fields, long Bytes)> Records(TextReader reader)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var raw = new StringBuilder();
        bool quoted = false;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            char ch = (char)c;
            raw.Append(ch);
            if (quoted)
            {
                if (ch != '"') field.Append(ch);
                else if (reader.Peek() == '"') { raw.Append((char)reader.Read()); field.Append('"'); }
                else quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n')
            {
                fields.Add(field.ToString());
                yield return ([.. fields], Utf8.GetByteCount(raw.ToString()));
                fields.Clear();
                field.Clear();
                raw.Clear();
            }
            else field.Append(ch);
        }
    }
}
