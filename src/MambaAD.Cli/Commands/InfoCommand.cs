using System.CommandLine;
using MambaAD.IO;
using MambaAD.Model;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad info</c>: a model configuration and its parameter counts, or its state_dict as keys.txt lines.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = new ModelOptions();
        var keys = new Option<bool>("--keys")
        { Description = "Print the state_dict instead, one 'name<TAB>shape<TAB>dtype' line per entry (the format of the official keys.txt)" };
        var command = new Command("info", "Show a model configuration and its parameter counts (trainable / frozen / total).");
        model.AddTo(command);
        command.Options.Add(keys);
        command.SetAction(parse =>
        {
            var config = model.Read(parse);
            using var m = new MambaADModel(config);
            if (parse.GetValue(keys))
            {
                foreach (var line in StateDict.KeyLines(m)) Console.WriteLine(line);
                return 0;
            }
            Console.WriteLine($"MambaAD  {config}");
            Console.WriteLine($"  encoder      {config.Backbone}, layer1–3, frozen");
            Console.WriteLine($"  bottleneck   MFF_OCE → 512×{config.BottleneckSide}×{config.BottleneckSide}");
            var sides = Enumerable.Range(0, 4).Select(i => config.BottleneckSide << i);
            Console.WriteLine($"  decoder      dims 512,256,128,64; depths {string.Join(",", config.Depths)}; map sides {string.Join(",", sides)}");
            Console.WriteLine($"  parameters   trainable {m.TrainableParameters:N0}");
            Console.WriteLine($"               frozen    {m.FrozenParameters:N0} (encoder)");
            Console.WriteLine($"               total     {m.TotalParameters:N0} (with {m.ScanIndexElements:N0} int64 scan indices, as the official count)");
            // The process, not the model: what a speed figure depends on (see NativeAllocator).
            Console.WriteLine($"  allocator    {Util.NativeAllocator.Describe()}" + (Util.NativeAllocator.Advice is { } advice ? $" ({advice})" : ""));
            Console.WriteLine($"  GEMMs        {Util.MklVendorCheck.State}");
            Console.WriteLine($"  native ISA   {Util.NativeIsaLimit.State}");
            Console.WriteLine($"  our kernels  {Ssm.ScanWorkers.Describe()}");
            return 0;
        });
        return command;
    }
}
