/// Somewhere artifacts are kept: a registry repository or an OCI layout directory. Push and pull
/// are written once against this, so the air-gap path is the same code as the registry path.
public protocol ArtifactStore: Sendable {
    /// Names the store in messages: `host/repository` or `oci:DIR`.
    var name: String { get }
    func hasBlob(_ descriptor: Descriptor) async throws(RegistryError) -> Bool
    func putBlob(_ bytes: [UInt8], descriptor: Descriptor) async throws(RegistryError)
    /// Stores a manifest under `tag`; returns the digest the store computed (or ours).
    func putManifest(_ bytes: [UInt8], descriptor: Descriptor, tag: String) async throws(RegistryError) -> String
    /// A manifest by tag or digest; nil when there is none by that name.
    func manifest(_ reference: String, cap: Int) async throws(RegistryError) -> [UInt8]?
    /// A blob's bytes, read up to `descriptor.size` and refused past it (the caller checks the digest).
    func blob(_ descriptor: Descriptor) async throws(RegistryError) -> [UInt8]
    /// Descriptors of manifests whose `subject` is `digest`, of `artifactType` (the OCI 1.1
    /// referrers API); empty where the store has no such index.
    func referrers(of digest: String, artifactType: String) async throws(RegistryError) -> [Descriptor]
    func close() async
}

extension ArtifactStore {
    func putBlobIfAbsent(_ bytes: [UInt8], descriptor: Descriptor) async throws(RegistryError) -> Bool {
        if try await hasBlob(descriptor) { return false }
        try await putBlob(bytes, descriptor: descriptor)
        return true
    }
}

/// The largest manifest read: ours are under 1 KiB; anything far bigger is not one of ours.
let manifestCap = 4 << 20
