import ArgumentParser

/// Options both transfer commands take.
struct RegistryOptions: ParsableArguments {
    @Flag(help: "Talk HTTP, not HTTPS, to the registry (a local registry on 127.0.0.1).")
    var plainHTTP = false

    @Option(help: "The docker config.json with the registry credentials (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json).")
    var registryConfig: String?
}
