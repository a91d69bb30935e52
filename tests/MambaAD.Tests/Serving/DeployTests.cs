using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using MambaAD.Server;
using YamlDotNet.RepresentationModel;

namespace MambaAD.Tests.Serving;

/// <summary>
/// What can be checked of the Dockerfile and the Kubernetes manifests without a container engine or a cluster: the
/// Dockerfile's structure, its publish step run for real (then the published server started the way the image
/// starts it, from a read-only folder, and asked the HEALTHCHECK's question), and the manifests parsed with their
/// probes, ports, arguments and references matched against the server's endpoints and options.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public partial class DeployTests
{
    private static readonly string Root = RepoRoot.Path;

    /// <summary>The Dockerfile's instructions (continuation lines joined, comments dropped) as (keyword, argument).</summary>
    private static List<(string Keyword, string Args)> Dockerfile()
    {
        var text = Regex.Replace(File.ReadAllText(Path.Combine(Root, "Dockerfile")), @"\\\r?\n", " ");
        return text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ', 2) is var p ? (p[0].ToUpperInvariant(), p.Length > 1 ? p[1].Trim() : "") : default).ToList();
    }

    private static (List<(string Keyword, string Args)> Build, List<(string Keyword, string Args)> Final) Stages()
    {
        var all = Dockerfile();
        var froms = all.Select((x, i) => (x, i)).Where(t => t.x.Keyword == "FROM").Select(t => t.i).ToList();
        Assert.Equal(2, froms.Count);
        return (all[froms[0]..froms[1]], all[froms[1]..]);
    }

    /// <summary>The value after <paramref name="option"/> in an argument list.</summary>
    private static string Option(IReadOnlyList<string> args, string option)
    {
        int i = args.ToList().IndexOf(option);
        Assert.True(i >= 0 && i + 1 < args.Count, $"{option} missing in [{string.Join(' ', args)}]");
        return args[i + 1];
    }

    /// <summary>Parses <paramref name="args"/> with the real CLI's command tree; returns the parse errors.</summary>
    private static List<string> CliParseErrors(IReadOnlyList<string> args)
    {
        var root = new System.CommandLine.RootCommand();
        foreach (var command in MambaAD.Cli.Program.Commands()) root.Subcommands.Add(command);
        return root.Parse(args.ToArray()).Errors.Select(e => e.Message).ToList();
    }

    private static int Port(string url) => int.Parse(ListenPort().Match(url).Groups[1].Value);

    [GeneratedRegex(@":(\d+)/?$")]
    private static partial Regex ListenPort();

    private static string[] Cmd(List<(string Keyword, string Args)> final, string keyword) =>
        JsonSerializer.Deserialize<string[]>(final.Single(x => x.Keyword == keyword).Args)!;

    [Fact]
    public void The_dockerfile_builds_with_the_sdk_and_runs_unprivileged_on_the_runtime_with_a_healthcheck_on_readiness()
    {
        var (build, final) = Stages();
        Assert.Matches(@"^mcr\.microsoft\.com/dotnet/sdk:10\.0 AS build$", build[0].Args);
        Assert.Matches(@"^mcr\.microsoft\.com/dotnet/aspnet:10\.0$", final[0].Args);
        Assert.Contains(build, x => x.Keyword == "RUN" && x.Args.StartsWith("dotnet publish src/MambaAD.Cli/MambaAD.Cli.csproj -c Release"));

        // Every file the build stage copies exists, and the restore sees the project file of every project the CLI needs.
        var copied = build.Where(x => x.Keyword == "COPY").SelectMany(x => x.Args.Split(' ')[..^1]).ToList();
        foreach (var path in copied) Assert.True(File.Exists(Path.Combine(Root, path)) || Directory.Exists(Path.Combine(Root, path)), $"COPY {path}: not in the repository");
        foreach (var project in ProjectClosure("src/MambaAD.Cli/MambaAD.Cli.csproj")) Assert.Contains(project, copied);

        var user = final.Single(x => x.Keyword == "USER").Args;
        Assert.DoesNotMatch(@"^(root|0)(:|$)", user);
        Assert.Equal("/model", final.Single(x => x.Keyword == "VOLUME").Args);
        var entry = Cmd(final, "ENTRYPOINT");
        var cmd = Cmd(final, "CMD");
        Assert.Equal(["dotnet", "/app/MambaAD.Cli.dll"], entry);
        Assert.Equal("serve", cmd[0]);
        Assert.Empty(CliParseErrors(cmd));
        Assert.Equal("/model", Option(cmd, "--checkpoint"));
        int port = Port(Option(cmd, "--urls"));
        Assert.Equal(port.ToString(), final.Single(x => x.Keyword == "EXPOSE").Args);
        Assert.Contains($"http://127.0.0.1:{port}{InferenceServer.ReadinessPath} ", final.Single(x => x.Keyword == "HEALTHCHECK").Args + " ");
        new ServerOptions(Urls: [Option(cmd, "--urls")]).Validate();

        var ignored = File.ReadAllLines(Path.Combine(Root, ".dockerignore")).Select(l => l.Trim()).ToList();
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        Assert.DoesNotContain(ignored, l => l.TrimEnd('/') is "src" or "build" or "Directory.Build.props" or "Directory.Build.targets");
    }

    /// <summary>The CLI project and every project it references, transitively, as repository paths.</summary>
    private static IEnumerable<string> ProjectClosure(string project)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out var p))
        {
            if (!seen.Add(p)) continue;
            var dir = Path.GetDirectoryName(Path.Combine(Root, p))!;
            foreach (var r in XDocument.Load(Path.Combine(Root, p)).Descendants("ProjectReference"))
                pending.Push(Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(dir, r.Attribute("Include")!.Value))).Replace('\\', '/'));
        }
        return seen;
    }

    /// <summary>
    /// Runs the Dockerfile's publish command (with --no-build: the test run has just built the same sources; the
    /// step then copies the ~0.5 GB of libtorch and patches it, ~10–30 s here), makes the output read-only, starts it
    /// with the image's ENTRYPOINT and CMD (checkpoint and port swapped for a test checkpoint and a free port), and
    /// asks what the HEALTHCHECK asks; then stops it as docker stop does.
    /// </summary>
    [Fact]
    public async Task The_published_server_starts_read_only_from_the_image_command_and_answers_its_healthcheck()
    {
        var (build, final) = Stages();
        var publish = build.Single(x => x.Keyword == "RUN" && x.Args.StartsWith("dotnet publish")).Args.Split(' ').ToList();
        var dir = Directory.CreateTempSubdirectory("mambaad-publish").FullName;
        try
        {
            var app = Path.Combine(dir, "app");
            publish[publish.IndexOf("-o") + 1] = app;
            var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Root, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in publish.Skip(1).Append("--no-build")) psi.ArgumentList.Add(a);
            using (var p = Process.Start(psi)!)
            {
                var log = p.StandardOutput.ReadToEndAsync();
                var err = p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(10));
                Assert.True(p.ExitCode == 0, $"dotnet {string.Join(' ', psi.ArgumentList)} failed: {await log} {await err}");
            }
            Assert.True(File.Exists(Path.Combine(app, "MambaAD.Cli.dll")));
            Assert.False(Directory.Exists(Path.Combine(app, "cpu")), "the libtorch patch was missed (a cpu/ folder appeared)");

            var ckpt = Path.Combine(dir, "model");
            ServerFixture.SaveTinyCheckpoint(ckpt);
            // As in the pod: the image's unprivileged user, who may write nothing under the app, the model or HOME.
            foreach (var path in new[] { app, ckpt }) ReadOnly(path);
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);

            var cmd = Cmd(final, "CMD").ToList();
            cmd[cmd.IndexOf("--checkpoint") + 1] = ckpt;
            cmd[cmd.IndexOf("--urls") + 1] = "http://127.0.0.1:0";
            var (server, url) = await ServeProcess.ServeAsync(cmd, Path.Combine(app, "MambaAD.Cli.dll"), home: ckpt, uid: 1654);
            using (server)
            {
                using var http = new HttpClient { BaseAddress = url };
                var health = await http.GetAsync(InferenceServer.ReadinessPath);
                Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
                server.Signal(ServeProcess.SIGTERM);
                Assert.Equal(0, await server.ExitCodeAsync(TimeSpan.FromMinutes(1)));
                Assert.Empty(server.Stderr);
            }
        }
        finally
        {
            foreach (var d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Prepend(dir))
                File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(dir, true);
        }

        static void ReadOnly(string path)
        {
            foreach (var d in Directory.EnumerateDirectories(path, "*", SearchOption.AllDirectories).Prepend(path))
                File.SetUnixFileMode(d, (UnixFileMode)0b101_101_101);
            foreach (var f in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories))
                File.SetUnixFileMode(f, File.GetUnixFileMode(f) & ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite) | UnixFileMode.OtherRead);
        }
    }

    private static List<YamlMappingNode> Documents(string file)
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(Root, "deploy", file))) yaml.Load(reader);
        return yaml.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlNode At(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            Assert.True(node is YamlMappingNode m && m.Children.ContainsKey(key), $"no '{key}' in {node}");
            node = ((YamlMappingNode)node)[key];
        }
        return node;
    }

    private static string Text(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> docs, string kind) => docs.Single(d => Text(d, "kind") == kind);

    private static List<string> Strings(YamlNode node) => ((YamlSequenceNode)node).Children.Select(c => ((YamlScalarNode)c).Value!).ToList();

    /// <summary>A Kubernetes memory quantity in MiB (Mi and Gi suffixes).</summary>
    private static double Mib(string q) => q.EndsWith("Gi") ? double.Parse(q[..^2]) * 1024 : q.EndsWith("Mi") ? double.Parse(q[..^2]) : throw new FormatException(q);

    [Fact]
    public void The_server_manifests_probe_the_server_s_endpoints_on_its_port_and_fit_its_options()
    {
        var docs = Documents("server.yaml");
        var deployment = Kind(docs, "Deployment");
        var pod = At(deployment, "spec", "template", "spec");
        var container = (YamlMappingNode)((YamlSequenceNode)At(pod, "containers")).Children.Single();
        var args = Strings(At(container, "args"));
        Assert.Equal("serve", args[0]);
        Assert.Empty(CliParseErrors(args));

        // The arguments make valid options; the port they listen on is the container port the probes use.
        var urls = Option(args, "--urls");
        var options = new ServerOptions(Urls: [urls], AllowedHosts: [Option(args, "--allowed-hosts")],
            MaxConcurrentRequests: int.Parse(Option(args, "--concurrency")),
            RequestTimeout: ServerOptions.TimeoutFromSeconds(double.Parse(Option(args, "--timeout")))).Validate();
        var port = (YamlMappingNode)((YamlSequenceNode)At(container, "ports")).Children.Single();
        Assert.Equal(Port(urls).ToString(), Text(port, "containerPort"));
        string portName = Text(port, "name");
        Assert.Equal(InferenceServer.ReadinessPath, Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal(InferenceServer.LivenessPath, Text(container, "livenessProbe", "httpGet", "path"));
        foreach (var probe in new[] { "readinessProbe", "livenessProbe", "startupProbe" })
            Assert.Equal(portName, Text(container, probe, "httpGet", "port"));

        // SIGTERM drains for up to the request timeout plus the server's margin, after the preStop pause.
        double preStop = double.Parse(Strings(At(container, "lifecycle", "preStop", "exec", "command"))[1]);
        Assert.True(double.Parse(Text(pod, "terminationGracePeriodSeconds")) > options.RequestTimeout!.Value.TotalSeconds + 5 + preStop);

        // The model is mounted read-only where --checkpoint points, from a read-only claim.
        var mount = ((YamlSequenceNode)At(container, "volumeMounts")).Children.Cast<YamlMappingNode>().Single(m => Text(m, "mountPath") == Option(args, "--checkpoint"));
        Assert.Equal("true", Text(mount, "readOnly"));
        var volume = ((YamlSequenceNode)At(pod, "volumes")).Children.Cast<YamlMappingNode>().Single(v => Text(v, "name") == Text(mount, "name"));
        Assert.Equal("true", Text(volume, "persistentVolumeClaim", "readOnly"));
        Assert.Equal("true", Text(pod, "securityContext", "runAsNonRoot"));
        Assert.NotEqual("0", Text(pod, "securityContext", "runAsUser"));

        // Memory: a request and a limit above it; CPU requested (the autoscaler's utilisation is relative to it).
        Assert.True(Mib(Text(container, "resources", "limits", "memory")) > Mib(Text(container, "resources", "requests", "memory")));
        Assert.NotEmpty(Text(container, "resources", "requests", "cpu"));

        var labels = (YamlMappingNode)At(deployment, "spec", "template", "metadata", "labels");
        var service = Kind(docs, "Service");
        foreach (var (key, value) in (YamlMappingNode)At(service, "spec", "selector")) Assert.Equal(value, labels[key]);
        Assert.Equal(portName, Text((YamlMappingNode)((YamlSequenceNode)At(service, "spec", "ports")).Children.Single(), "targetPort"));

        var hpa = Kind(docs, "HorizontalPodAutoscaler");
        Assert.Equal("autoscaling/v2", Text(hpa, "apiVersion"));
        Assert.Equal("Deployment", Text(hpa, "spec", "scaleTargetRef", "kind"));
        Assert.Equal(Text(deployment, "metadata", "name"), Text(hpa, "spec", "scaleTargetRef", "name"));
        var metric = (YamlMappingNode)((YamlSequenceNode)At(hpa, "spec", "metrics")).Children.Single();
        Assert.Equal("cpu", Text(metric, "resource", "name"));
        Assert.Equal("Utilization", Text(metric, "resource", "target", "type"));
    }

    [Fact]
    public void The_predict_job_runs_one_shard_per_index_over_shared_volumes()
    {
        var job = Kind(Documents("predict-job.yaml"), "Job");
        Assert.Equal("Indexed", Text(job, "spec", "completionMode"));
        int shards = int.Parse(Text(job, "spec", "completions"));
        Assert.True(shards > 1);
        Assert.True(int.Parse(Text(job, "spec", "parallelism")) <= shards);
        var pod = At(job, "spec", "template", "spec");
        Assert.Contains(Text(pod, "restartPolicy"), new[] { "Never", "OnFailure" });
        var container = (YamlMappingNode)((YamlSequenceNode)At(pod, "containers")).Children.Single();
        var args = Strings(At(container, "args"));
        Assert.Equal("predict", args[0]);
        Assert.Equal($"$(JOB_COMPLETION_INDEX)/{shards}", Option(args, "--shard"));
        Assert.Contains("--resume", args);
        Assert.Contains("--skip-bad", args);
        // Each shard writes its own folder (so that outputs concatenate); model and images are read-only mounts.
        Assert.Contains("$(JOB_COMPLETION_INDEX)", Option(args, "--out"));
        var mounts = ((YamlSequenceNode)At(container, "volumeMounts")).Children.Cast<YamlMappingNode>()
            .ToDictionary(m => Text(m, "mountPath"), m => m.Children.ContainsKey("readOnly") && Text(m, "readOnly") == "true");
        string Mount(string path) => mounts.Keys.Where(m => path == m || path.StartsWith(m + "/")).OrderByDescending(m => m.Length).First();
        Assert.True(mounts[Mount(Option(args, "--checkpoint"))], "the model is mounted read-only");
        Assert.True(mounts[Mount(args[^1])], "the input images are mounted read-only");
        Assert.False(mounts[Mount(Option(args, "--out"))], "the output volume is writable");
        var server = (YamlMappingNode)((YamlSequenceNode)At(Kind(Documents("server.yaml"), "Deployment"), "spec", "template", "spec", "containers")).Children.Single();
        Assert.Equal(Text(server, "image"), Text(container, "image"));
    }
}
