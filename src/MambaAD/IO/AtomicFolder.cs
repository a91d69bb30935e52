namespace MambaAD.IO;

/// <summary>
/// Replaces a folder of files as a whole, so that a kill, a crash or a full disk at any moment leaves either the old
/// set or the new one, never a mix: the new files are written into a sibling <c>.NAME.new</c>, flushed to the
/// device (files and folder), and then swapped in by two renames (the old folder out, the new one in). A folder
/// counts as complete when it holds its completion file, which the writer writes last. <see cref="Recover"/> finishes
/// or undoes an interrupted swap at the next start; nothing else is left behind.
/// </summary>
/// <remarks>
/// With <c>keepPrevious</c> the replaced set stays beside as <c>NAME.previous</c> (a fallback for readers that find
/// <c>NAME</c> unreadable); it is dropped when the next replacement starts, so at most two sets and one partial set
/// exist at any time. Each step is a <see cref="CrashPoint"/> ("NAME:begin", "NAME:written", "NAME:staged",
/// "NAME:old-moved", "NAME:swapped", "NAME:done") for the tests.
/// </remarks>
internal static class AtomicFolder
{
    /// <summary>The set replaced by the last <see cref="Replace"/> with keepPrevious: <c>NAME.previous</c> beside <paramref name="dir"/>.</summary>
    public static string PreviousOf(string dir) => Sibling(dir, "", ".previous");

    private static string Staging(string dir) => Sibling(dir, ".", ".new");
    private static string Old(string dir) => Sibling(dir, ".", ".old");

    private static string Sibling(string dir, string prefix, string suffix)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        return Path.Combine(Path.GetDirectoryName(full)!, prefix + Path.GetFileName(full) + suffix);
    }

    /// <summary>
    /// Replaces <paramref name="dir"/> with what <paramref name="write"/> puts into the folder it is given; the
    /// writer writes <paramref name="completeFile"/> last.
    /// </summary>
    /// <exception cref="MambaADException">The new set could not be written (full disk, permissions); <paramref name="dir"/> is untouched and no partial set is left.</exception>
    public static void Replace(string dir, Action<string> write, string completeFile, bool keepPrevious)
    {
        dir = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(dir)!;
        var staging = Staging(dir);
        var aside = keepPrevious ? PreviousOf(dir) : Old(dir);
        var name = Path.GetFileName(dir);
        try
        {
            DeleteTree(staging);                         // a partial set of an earlier crash
            if (keepPrevious) DeleteTree(aside);         // room for the new set: dir stays intact meanwhile
            Directory.CreateDirectory(staging);
            CrashPoint.Reached($"{name}:begin");
            write(staging);
            if (!File.Exists(Path.Combine(staging, completeFile)))
                throw new InvalidOperationException($"the writer of {dir} did not write {completeFile}");
            CrashPoint.Reached($"{name}:written");
            Durable.FlushTree(staging);
            Durable.FlushDirectory(parent);
            CrashPoint.Reached($"{name}:staged");
        }
        catch (Exception e) when (e is MambaADException || IoError.Is(e))
        {
            DeleteTreeQuietly(staging);
            var reason = e switch
            {
                MambaADException { InnerException: { } io } when IoError.Is(io) => IoError.Reason(io),
                MambaADException m => m.Message,
                _ => IoError.Reason(e),
            };
            throw new MambaADException($"cannot save {dir} ({reason}); " +
                (File.Exists(Path.Combine(dir, completeFile)) ? "the checkpoint already there is intact" : "nothing was saved"), e);
        }
        catch
        {
            DeleteTreeQuietly(staging);
            throw;
        }

        try
        {
            if (Directory.Exists(dir))
            {
                DeleteTree(aside);
                Directory.Move(dir, aside);
                CrashPoint.Reached($"{name}:old-moved");
            }
            Directory.Move(staging, dir);
            Durable.FlushDirectory(parent);
            CrashPoint.Reached($"{name}:swapped");
            if (!keepPrevious) DeleteTree(aside);
            CrashPoint.Reached($"{name}:done");
        }
        catch (Exception e) when (IoError.Is(e))
        {
            // A rename failed (rare: permissions changed mid-run). Put the old set back if it was moved out.
            if (!Directory.Exists(dir) && Directory.Exists(aside)) try { Directory.Move(aside, dir); } catch (Exception) { }
            DeleteTreeQuietly(staging);
            throw new MambaADException($"cannot save {dir} ({IoError.Reason(e)})", e);
        }
    }

    /// <summary>
    /// Brings <paramref name="dir"/> to a complete state after a crash during <see cref="Replace"/>: a complete new set
    /// that was not swapped in yet is swapped in when <paramref name="dir"/> is missing; otherwise the partial new set
    /// and the old set that was being replaced are removed. Returns what was done, in words, or null when nothing was.
    /// </summary>
    public static string? Recover(string dir, string completeFile)
    {
        dir = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var staging = Staging(dir);
        var old = Old(dir);
        string? done = null;
        if (!Directory.Exists(dir))
        {
            // The crash fell between the two renames: the new set is complete (it was flushed before the first one).
            if (File.Exists(Path.Combine(staging, completeFile)))
            {
                Directory.Move(staging, dir);
                done = $"completed the interrupted save of {dir}";
            }
            else if (File.Exists(Path.Combine(old, completeFile)))
            {
                Directory.Move(old, dir);
                done = $"restored {dir} from an interrupted save";
            }
            if (done is not null) Durable.FlushDirectory(Path.GetDirectoryName(dir)!);
        }
        if (Directory.Exists(staging)) { DeleteTree(staging); done ??= $"removed a partial save of {dir}"; }
        if (Directory.Exists(old)) { DeleteTree(old); done ??= $"removed the replaced copy of {dir}"; }
        return done;
    }

    /// <summary>The folders <see cref="Replace"/> and <see cref="Recover"/> may leave or use beside <paramref name="dir"/>.</summary>
    public static IEnumerable<string> Siblings(string dir) => [Staging(dir), Old(dir), PreviousOf(dir)];

    private static void DeleteTree(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static void DeleteTreeQuietly(string dir)
    {
        try { DeleteTree(dir); }
        catch (Exception e) when (IoError.Is(e)) { }
    }
}
