/// Opens the store a reference names, with the tag or digest it asks for.
public enum Stores {
    /// For a push, a tag is required (a digest names bytes we would be writing); `latest` when
    /// REF has neither, as docker and oras do. `configPath` is --registry-config.
    public static func open(_ ref: ArtifactReference, plainHTTP: Bool, configPath: String?, environment: [String: String],
                            push: Bool) throws(RegistryError) -> (store: any ArtifactStore, reference: String) {
        switch ref {
        case .layout(let l):
            if push, l.digest != nil { throw RegistryError(l.description, step: "parse", "a push needs a tag, not a digest") }
            return (LayoutStore(directory: l.directory), l.digest ?? l.tag ?? "latest")
        case .registry(let r):
            if push, r.digest != nil { throw RegistryError(r.description, step: "parse", "a push needs a tag, not a digest") }
            let config = try DockerConfig.load(explicit: configPath, environment: environment)
            let credentials = try config.credentials(for: r.host)
            return (RegistryStore(r, plainHTTP: plainHTTP, credentials: credentials, push: push), r.reference ?? "latest")
        }
    }
}
