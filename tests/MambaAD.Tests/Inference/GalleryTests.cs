using MambaAD.Data;
using MambaAD.Imaging;
using MambaAD.Inference;

namespace MambaAD.Tests.Inference;

/// <summary>
/// The report's gallery is chosen at the end (its threshold is known only then) from candidates kept while testing:
/// its first rows must be those of a gallery that kept every image, whatever the threshold.
/// </summary>
public class GalleryTests
{
    [Fact]
    public void Kept_candidates_give_the_gallery_of_all_images_at_any_threshold()
    {
        var rng = new Random(9);
        const int size = 8, rows = 5;
        var small = new Gallery(rows, 16);
        var all = new Gallery(int.MaxValue, 16);
        var input = new float[3 * size * size];
        var scores = new List<double>();
        for (int i = 0; i < 200; i++)
        {
            double score = Math.Round(rng.NextDouble(), 1); // many ties: the earlier image must win them in both
            bool anomalous = rng.Next(3) == 0;
            var sample = new Sample($"/d/{i}.png", "c", anomalous ? "bad" : "good", null, anomalous);
            var map = Enumerable.Repeat((float)score, size * size).ToArray();
            small.Offer(sample, score, anomalous, input, InputNormalization.ImageNet, map, size, null);
            all.Offer(sample, score, anomalous, input, InputNormalization.ImageNet, map, size, null);
            scores.Add(score);
        }
        Assert.True(small.Rows("c", 2, 1000).Count <= 2 * rows);
        foreach (double threshold in scores.Distinct().Append(-1).Append(2))
            foreach (int shown in new[] { 1, 3, rows })
            {
                var want = all.Rows("c", threshold, shown).Select(r => (r.Entry.Sample.ImagePath, r.Outcome));
                var got = small.Rows("c", threshold, shown).Select(r => (r.Entry.Sample.ImagePath, r.Outcome));
                Assert.Equal(want, got);
            }
    }
}
