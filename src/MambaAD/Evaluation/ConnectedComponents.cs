namespace MambaAD.Evaluation;

/// <summary>
/// 8-connected component labelling of a binary mask (skimage <c>label</c> with its default full connectivity for
/// 2-D, as AU-PRO uses it, spec §14). Diagonal neighbours join a region.
/// </summary>
internal static class ConnectedComponents
{
    /// <summary>Labels the non-zero pixels of an H×W mask: 0 is background, regions are 1..count.</summary>
    public static int[] Label(ReadOnlySpan<byte> mask, int height, int width, out int count)
    {
        var labels = new int[height * width];
        var stack = new Stack<int>();
        count = 0;
        for (int start = 0; start < labels.Length; start++)
        {
            if (mask[start] == 0 || labels[start] != 0) continue;
            int id = ++count;
            labels[start] = id;
            stack.Push(start);
            while (stack.Count > 0)
            {
                int p = stack.Pop();
                int y = p / width, x = p % width;
                for (int dy = -1; dy <= 1; dy++)
                {
                    int ny = y + dy;
                    if ((uint)ny >= (uint)height) continue;
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int nx = x + dx;
                        if ((uint)nx >= (uint)width) continue;
                        int q = ny * width + nx;
                        if (mask[q] != 0 && labels[q] == 0) { labels[q] = id; stack.Push(q); }
                    }
                }
            }
        }
        return labels;
    }
}
