import ArgumentParser
import FoundationEssentials
import HostSystem
import Registry

/// `balancer pull`: an image (and its signature, unverified) from a registry or an OCI layout
/// directory, written only after every digest and type check passed.
struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull a map image (and its signature) from an OCI registry or an OCI layout directory.",
        discussion: """
        REF is host[:port]/repository[:tag|@sha256:…] or oci:DIR:TAG. Only an artifact of type \
        application/vnd.balancer.image.v1 with one layer of that type is accepted; the layer's \
        size and digest are checked before anything is written. The image is written atomically \
        to -o; a signature stored under cosign's tag (sha256-<hex>.sig) is written to IMAGE.sig. \
        The signature is not checked here: run `balancer verify` with a key you trust.
        """)

    @Argument(help: "Where from: host[:port]/repository[:tag|@sha256:…] or oci:DIR:TAG.")
    var ref: String

    @Option(name: .shortAndLong, help: "Where to write the image (its signature goes to OUTPUT.sig).")
    var output: String

    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        let parsed = try CommandError.wrapping { try ArtifactReference.parse(ref) }
        let (store, reference) = try CommandError.wrapping {
            try Stores.open(parsed, plainHTTP: registry.plainHTTP, configPath: registry.registryConfig,
                            environment: ProcessInfo.processInfo.environment, push: false)
        }
        let result: Result<PullResult, RegistryError>
        do {
            result = .success(try await Transfer.pull(from: store, reference: reference))
        } catch {
            result = .failure(error)
        }
        await store.close()
        let pulled = try CommandError.wrapping("pull failed: ") { try result.get() }
        // The signature first: an image never appears beside a signature of an earlier pull.
        let sigPath = output + ".sig"
        if let signature = pulled.signature {
            try CommandError.wrapping("cannot write \(sigPath): ") { try FileContents.writeAtomically(signature, to: sigPath) }
        }
        try CommandError.wrapping("cannot write \(output): ") { try FileContents.writeAtomically(pulled.image, to: output) }
        let named = reference == pulled.manifestDigest ? "\(store.name)@\(reference)" : "\(store.name):\(reference)@\(pulled.manifestDigest)"
        print("pulled \(named) to \(output) (\(counted(pulled.image.count, "byte")))")
        if pulled.signature != nil {
            print("signature found (\(pulled.signatureSource ?? "")): wrote \(sigPath) (not verified: run balancer verify \(output) --key PUB.pem)")
        } else {
            print("no signature found (no tag \(Digest.signatureTag(of: pulled.manifestDigest)) and no referrer in \(store.name))"
                  + (FileManager.default.fileExists(atPath: sigPath) ? "; \(sigPath) is from before and was left as it was" : ""))
        }
    }
}
