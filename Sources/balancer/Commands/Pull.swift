import ArgumentParser
import FoundationEssentials
import HostSystem
import MapImage
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
        The signature is not checked unless --trust-key names the keys to trust: then an image \
        without a valid signature by one of them is refused and nothing is written; otherwise run \
        `balancer verify` with a key you trust.
        """)

    @Argument(help: "Where from: host[:port]/repository[:tag|@sha256:…] or oci:DIR:TAG.")
    var ref: String

    @Option(name: .shortAndLong, help: "Where to write the image (its signature goes to OUTPUT.sig).")
    var output: String

    @OptionGroup var registry: RegistryOptions

    @Option(name: .customLong("trust-key"), help: ArgumentHelp("Write the image only when its signature is valid for this public key (PEM), or one in this directory; repeatable.",
                                                             valueName: "pub.pem|dir"))
    var trustKeys: [String] = []

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
        // --trust-key: checked before anything is written, as `load --trust-key` checks.
        var signer: String?
        if !trustKeys.isEmpty {
            let trusted = try CommandError.wrapping("--trust-key: ") { try TrustedKeys.read(trustKeys) }
            guard let signature = pulled.signature else {
                throw CommandError(description: "refused (nothing written): \(store.name) holds no signature of \(pulled.manifestDigest), and --trust-key requires one")
            }
            let raw = try CommandError.wrapping("refused (nothing written): ") { try ImageSignature.raw(signature, file: "the signature pulled") }
            signer = try CommandError.wrapping("refused (nothing written): ") { try trusted.signer(of: pulled.image, signature: raw, imageName: ref) }
        }
        // The signature first: an image never appears beside a signature of an earlier pull.
        let sigPath = output + ".sig"
        if let signature = pulled.signature {
            try CommandError.wrapping("cannot write \(sigPath): ") { try FileContents.writeAtomically(signature, to: sigPath) }
        }
        try CommandError.wrapping("cannot write \(output): ") { try FileContents.writeAtomically(pulled.image, to: output) }
        let named = reference == pulled.manifestDigest ? "\(store.name)@\(reference)" : "\(store.name):\(reference)@\(pulled.manifestDigest)"
        print("pulled \(named) to \(output) (\(counted(pulled.image.count, "byte")))")
        if let signer {
            print("signature valid (\(signer); found by \(pulled.signatureSource ?? "")): wrote \(sigPath)")
        } else if pulled.signature != nil {
            print("signature found (\(pulled.signatureSource ?? "")): wrote \(sigPath) (not verified: run balancer verify \(output) --key PUB.pem)")
        } else {
            print("no signature found (no tag \(Digest.signatureTag(of: pulled.manifestDigest)) and no referrer in \(store.name))"
                  + (FileManager.default.fileExists(atPath: sigPath) ? "; \(sigPath) is from before and was left as it was" : ""))
        }
    }
}
