using System.CommandLine;
using MambaAD.Model;

namespace MambaAD.Cli.Commands;

/// <summary>--checkpoint and the configuration assumed for an official checkpoint (one without model.json).</summary>
internal sealed class CheckpointOptions
{
    public Option<string> Checkpoint { get; } = new("--checkpoint")
    {
        Description = "A model.pth, a checkpoint folder, or a run folder (its best/, else last/); also an official MambaAD checkpoint (a state_dict or {\"net\": …}), read with the official configuration unless the model options below say otherwise",
        Required = true,
    };

    public ModelOptions Model { get; } = new();

    public Option<string> Device { get; } = new("--device") { Description = "cpu, or cuda with a CUDA build of libtorch", DefaultValueFactory = _ => "cpu" };

    public void AddTo(Command command)
    {
        command.Options.Add(Checkpoint);
        command.Options.Add(Device);
        Model.AddTo(command);
    }

    public (string Path, MambaADConfig OfficialConfig, string Device) Read(ParseResult parse) =>
        (parse.GetValue(Checkpoint)!, Model.Read(parse), parse.GetValue(Device)!);
}
