import ArgumentParser
import FoundationEssentials
import HostSystem
import MapImage
import Registry

/// `balancer push`: the image, and its signature, into a registry or an OCI layout directory, as
/// OCI artifacts the ecosystem's tools handle without knowing what a map image is.
struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push a map image (and its signature) to an OCI registry or an OCI layout directory.",
        discussion: """
        REF is host[:port]/repository[:tag] (default tag latest) or oci:DIR:TAG, an OCI image \
        layout directory (the air-gap format skopeo and oras read). The image becomes an OCI 1.1 \
        artifact of type application/vnd.balancer.image.v1: the empty config and one layer, the \
        image's bytes. The same bytes always make the same manifest digest.

        The signature (--signature, default IMAGE.sig when it exists) goes along as a second \
        artifact whose subject is the image manifest, tagged sha256-<hex>.sig (cosign's scheme). \
        Credentials come from the docker config.json (docs/registry.md).
        """)

    @Argument(help: "The map image file.")
    var image: String

    @Argument(help: "Where to: host[:port]/repository[:tag] or oci:DIR:TAG.")
    var ref: String

    @Option(help: "The detached signature to push with it (default: IMAGE.sig when it exists).")
    var signature: String?

    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        let parsed = try CommandError.wrapping { try ArtifactReference.parse(ref) }
        // Verified as `load` would: a typo'd path or a half-written file never reaches a registry.
        let bytes = try loadImage(image).bytes
        let sigPath = signature ?? (FileManager.default.fileExists(atPath: image + ".sig") ? image + ".sig" : nil)
        let sigBytes = try sigPath.map { p in try CommandError.wrapping("cannot read signature \(p): ") { try FileContents.read(p) } }
        let (store, tag) = try CommandError.wrapping {
            try Stores.open(parsed, plainHTTP: registry.plainHTTP, configPath: registry.registryConfig,
                            environment: ProcessInfo.processInfo.environment, push: true)
        }
        let result: Result<PushResult, RegistryError>
        do {
            result = .success(try await Transfer.push(image: bytes, title: baseName(image), signature: sigBytes,
                                                      signatureTitle: baseName(sigPath ?? image + ".sig"), to: store, tag: tag))
        } catch {
            result = .failure(error)
        }
        await store.close()
        let pushed = try CommandError.wrapping("push failed: ") { try result.get() }
        print("pushed \(image) to \(store.name):\(tag)@\(pushed.manifestDigest) (\(counted(bytes.count, "byte")), \(counted(pushed.blobsUploaded, "blob")) uploaded)")
        if let t = pushed.signatureTag, let sigPath {
            print("pushed signature \(sigPath) as \(store.name):\(t)")
        } else {
            print("no signature pushed (no --signature and no \(image).sig)")
        }
    }
}

func baseName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
