using System.Runtime.InteropServices;

namespace MambaAD.Util;

/// <summary>
/// The C environment that native libraries read with getenv. .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/>
/// does not reach it, so the process policies (huge pages, the libraries' instruction sets) set their variables here.
/// </summary>
internal static partial class NativeEnvironment
{
    /// <summary>Sets <paramref name="name"/> unless it is set already (the user's value wins).</summary>
    /// <returns>Whether the variable now has <paramref name="value"/>.</returns>
    public static bool SetIfUnset(string name, string value)
    {
        if (Get(name) is { } user) return user == value;
        return SetEnv(name, value, 0) == 0;
    }

    public static string? Get(string name) => Marshal.PtrToStringUTF8(GetEnv(name));

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetEnv(string name);
}
