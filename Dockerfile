# The MambaAD inference server (`mambaad serve`) as a container image: multi-stage, non-root, the checkpoint mounted
# read-only at /model. See README, "Deploy". Checked by tests/MambaAD.Tests/Serving/DeployTests.cs (its publish step
# and start-up are run there; the image itself is not built on the development machines: no container engine).
#
#   docker build -t mambaad .
#   docker run --rm -p 8080:8080 -v "$PWD/runs/mvtec/last:/model:ro" mambaad
#   curl --data-binary @image.png -H 'Content-Type: image/png' http://localhost:8080/predict

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore from the project files alone, so that this layer is reused while only sources change.
COPY Directory.Build.props Directory.Build.targets ./
COPY build/ build/
COPY src/MambaAD/MambaAD.csproj src/MambaAD/
COPY src/MambaAD.Server/MambaAD.Server.csproj src/MambaAD.Server/
COPY src/MambaAD.Demo/MambaAD.Demo.csproj src/MambaAD.Demo/
COPY src/MambaAD.Benchmarks/MambaAD.Benchmarks.csproj src/MambaAD.Benchmarks/
COPY src/MambaAD.Cli/MambaAD.Cli.csproj src/MambaAD.Cli/
RUN dotnet restore src/MambaAD.Cli/MambaAD.Cli.csproj
COPY src/ src/
RUN dotnet publish src/MambaAD.Cli/MambaAD.Cli.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# curl serves the HEALTHCHECK only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# The checkpoint folder (model.pth and model.json), mounted read-only; the server writes nothing.
VOLUME /model
# The image's unprivileged user (uid 1654, defined by the .NET images).
USER $APP_UID
EXPOSE 8080
# Readiness: 200 once the model is loaded and warmed up (503 while loading, draining or failed).
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
# docker stop sends SIGTERM: admitted requests are drained (up to --timeout), then the process exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "/app/MambaAD.Cli.dll"]
# Loopback names only by default (DNS rebinding); add the names clients use, e.g. --allowed-hosts "localhost;inspect.example.com".
CMD ["serve", "--checkpoint", "/model", "--urls", "http://*:8080"]
