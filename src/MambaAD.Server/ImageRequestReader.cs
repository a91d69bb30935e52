using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using SkiaSharp;

namespace MambaAD.Server;

/// <summary>
/// Reads the encoded images of a request into memory: a raw body (<c>image/*</c> or <c>application/octet-stream</c>)
/// or the file parts of <c>multipart/form-data</c>. Nothing touches the file system: multipart sections are streamed
/// into memory with <see cref="MultipartReader"/> instead of ASP.NET's form reader, which spills large files to disk.
/// Part file names are only echoed back, never used as paths. Image sizes are read from the headers before anything
/// is decoded.
/// </summary>
internal static class ImageRequestReader
{
    /// <summary>One encoded image and the name used for it in answers and errors.</summary>
    public sealed record EncodedImage(string Name, byte[] Bytes, int Width, int Height);

    private static readonly string[] RawTypes = ["image/png", "image/jpeg", "image/jpg", "image/bmp", "image/x-ms-bmp", "image/gif", "image/webp", "application/octet-stream"];

    /// <summary>What 415 answers ask for: every raw type served (less the aliases image/jpg and image/x-ms-bmp), and multipart.</summary>
    internal const string AcceptedTypes = "image/png, image/jpeg, image/bmp, image/gif, image/webp, application/octet-stream or multipart/form-data";

    public static async Task<IReadOnlyList<EncodedImage>> ReadAsync(HttpRequest request, ServerOptions o, int maxImages, CancellationToken ct)
    {
        if (request.ContentLength > o.MaxRequestBytes)
            throw new RequestRejected(StatusCodes.Status413PayloadTooLarge, $"request body of {request.ContentLength} bytes exceeds the limit of {o.MaxRequestBytes} bytes");
        var contentType = request.ContentType;
        if (string.IsNullOrWhiteSpace(contentType))
            throw new RequestRejected(StatusCodes.Status415UnsupportedMediaType, $"missing Content-Type: send {AcceptedTypes}");
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType.Value is not { } type)
            throw new RequestRejected(StatusCodes.Status415UnsupportedMediaType, $"unreadable Content-Type '{Clip(contentType)}'");
        List<(string Name, byte[] Bytes)> parts;
        if (type.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            parts = await ReadMultipartAsync(request, media, maxImages, o.MaxRequestBytes, ct);
        else if (RawTypes.Contains(type, StringComparer.OrdinalIgnoreCase))
            parts = [("body", await ReadAllAsync(request.Body, o.MaxRequestBytes, request.ContentLength, ct))];
        else
            throw new RequestRejected(StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{Clip(type)}' is not accepted: send {AcceptedTypes}");

        if (parts.Count == 0) throw new RequestRejected(StatusCodes.Status400BadRequest, "empty request: no image in the multipart body (send file parts)");
        var images = new List<EncodedImage>(parts.Count);
        long pixels = 0;
        foreach (var (name, bytes) in parts)
        {
            if (bytes.Length == 0) throw new RequestRejected(StatusCodes.Status400BadRequest, $"{name}: empty body; send the image file's bytes");
            var (w, h) = Header(name, bytes);
            if (w <= 0 || h <= 0) throw new RequestRejected(StatusCodes.Status400BadRequest, $"{name}: the image header declares no pixels ({w}×{h})");
            if (w > o.MaxImageSide || h > o.MaxImageSide)
                throw new RequestRejected(StatusCodes.Status422UnprocessableEntity, $"{name}: image is {w}×{h}; the limit is {o.MaxImageSide} pixels per side");
            pixels += (long)w * h;
            if (pixels > o.MaxImagePixels)
                throw new RequestRejected(StatusCodes.Status422UnprocessableEntity, $"{name}: the request's images have {pixels} pixels in all; the limit is {o.MaxImagePixels}");
            images.Add(new EncodedImage(name, bytes, w, h));
        }
        return images;
    }

    /// <summary>The size from the image header (no pixel decoding, no copy of the body); a non-image is a 400.</summary>
    private static unsafe (int Width, int Height) Header(string name, byte[] bytes)
    {
        fixed (byte* p = bytes)
        {
            using var data = SKData.Create((IntPtr)p, bytes.Length);
            using var codec = SKCodec.Create(data)
                ?? throw new RequestRejected(StatusCodes.Status400BadRequest, $"{name}: not a readable image (corrupt, or not PNG/JPEG/BMP/WebP/GIF)");
            return (codec.Info.Width, codec.Info.Height);
        }
    }

    private static async Task<List<(string, byte[])>> ReadMultipartAsync(HttpRequest request, MediaTypeHeaderValue media, int maxImages, long maxBytes, CancellationToken ct)
    {
        var boundary = HeaderUtilities.RemoveQuotes(media.Boundary).Value;
        if (string.IsNullOrEmpty(boundary) || boundary.Length > 200)
            throw new RequestRejected(StatusCodes.Status400BadRequest, "multipart/form-data without a valid boundary");
        var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = maxBytes };
        var parts = new List<(string, byte[])>();
        long total = 0;
        try
        {
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)) continue;
                // Only file parts are images; plain form fields are ignored.
                if (!disposition.FileName.HasValue && !disposition.FileNameStar.HasValue) continue;
                if (parts.Count == maxImages)
                    throw new RequestRejected(StatusCodes.Status413PayloadTooLarge, $"more than {maxImages} images in one request");
                var name = Clip(HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value ?? "");
                var bytes = await ReadAllAsync(section.Body, maxBytes - total, null, ct);
                total += bytes.Length;
                parts.Add((name.Length == 0 ? $"part {parts.Count + 1}" : name, bytes));
            }
        }
        catch (InvalidDataException e)
        {
            throw new RequestRejected(StatusCodes.Status400BadRequest, $"malformed multipart body ({e.Message})");
        }
        catch (IOException e) when (e.InnerException is null && e.Message.Contains("Unexpected end of Stream", StringComparison.OrdinalIgnoreCase))
        {
            throw new RequestRejected(StatusCodes.Status400BadRequest, "truncated multipart body");
        }
        return parts;
    }

    /// <summary>
    /// Reads a stream into memory, refusing more than <paramref name="limit"/> bytes; a declared length (already
    /// checked against the limit) sizes the buffer once instead of growing it by doubling.
    /// </summary>
    private static async Task<byte[]> ReadAllAsync(Stream body, long limit, long? declared, CancellationToken ct)
    {
        using var buffer = new MemoryStream(declared is > 0 and <= int.MaxValue ? (int)Math.Min(declared.Value, limit) : 0);
        var chunk = new byte[81920];
        int n;
        while ((n = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > limit)
                throw new RequestRejected(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the limit of {limit} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    /// <summary>Client text echoed in answers: one line, at most 100 characters.</summary>
    internal static string Clip(string s)
    {
        var line = new string(s.Where(c => !char.IsControl(c)).Take(100).ToArray());
        return line;
    }
}
