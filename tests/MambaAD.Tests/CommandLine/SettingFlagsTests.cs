using MambaAD.Cli.Commands;
using MambaAD.Tests.Data;

namespace MambaAD.Tests.CommandLine;

/// <summary>The library names the setting at fault; the CLI turns it into the option that fixes it.</summary>
public class SettingFlagsTests
{
    [Fact]
    public void Every_mapped_flag_is_an_option_of_some_command()
    {
        var options = MambaAD.Cli.Program.Commands().SelectMany(c => c.Options).Select(o => o.Name).ToHashSet();
        var missing = SettingFlags.Flags.Values.Where(f => !options.Contains(f)).ToList();
        Assert.True(missing.Count == 0, "flags no command declares: " + string.Join(", ", missing));
    }

    [Fact]
    public void An_error_about_a_setting_names_its_flag_in_one_line()
    {
        Assert.Equal("--lr: the learning rate -1 must be positive",
            SettingFlags.Describe(new MambaADException("the learning rate -1 must be positive", "LearningRate")));
        Assert.Equal("x.png: not a readable image", SettingFlags.Describe(new MambaADException("x.png: not a readable image")));
    }

    [Theory]
    [InlineData("--lr", "-1", "error: --lr: the learning rate -1 must be positive")]
    [InlineData("--feature-cache", "-1", "error: --feature-cache: the feature cache of -1 GB must be 0 (off) or a positive number of GB")]
    public void Train_with_a_bad_value_prints_the_flag_and_exits_2(string flag, string value, string expected)
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var (code, _, err) = CliRunner.Run("train", "--data", d.Root, "--out", Path.Combine(d.Root, "..", "run"), flag, value);
        Assert.Equal(2, code);
        Assert.Equal(expected, err.Trim());
    }

    [Fact]
    public void An_unknown_layout_is_named_with_the_dataset_flag()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        var (code, _, err) = CliRunner.Run("eval", "--data", d.Root, "--maps", d.Root, "--dataset", "coco");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --dataset: dataset layout 'coco' is unknown; the layouts are meta, visa, realiad", err.Trim());
    }
}
