import FoundationEssentials
import HostSystem
import SystemPackage

/// An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json` and
/// `blobs/sha256/<hex>`. What skopeo and oras read and write, so an air-gapped host can be given a
/// directory instead of a registry. Writes are atomic per file; `index.json` is rewritten with
/// the entries other tools put there kept.
public struct LayoutStore: ArtifactStore {
    public let directory: String
    public var name: String { "oci:\(directory)" }

    public init(directory: String) {
        self.directory = directory
    }

    func blobPath(_ digest: String) -> String { "\(directory)/blobs/sha256/\(digest.dropFirst(7))" }

    func fail(_ step: String, _ why: String) -> RegistryError { RegistryError(name, step: step, why) }

    /// Creates the layout's skeleton when absent; refuses a directory whose `oci-layout` is not 1.0.0.
    func prepare() throws(RegistryError) {
        do {
            try FileManager.default.createDirectory(atPath: "\(directory)/blobs/sha256", withIntermediateDirectories: true)
        } catch {
            throw fail("create layout", "\(error)")
        }
        let marker = "\(directory)/oci-layout"
        if FileManager.default.fileExists(atPath: marker) {
            try checkMarker()
        } else {
            do { try FileContents.writeAtomically(Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: marker) } catch { throw fail("write oci-layout", "\(error)") }
        }
    }

    func checkMarker() throws(RegistryError) {
        let bytes: [UInt8]
        do { bytes = try FileContents.read("\(directory)/oci-layout") } catch { throw fail("read oci-layout", "not an OCI image layout: \(error)") }
        guard let v = JSONValue.parse(bytes)?["imageLayoutVersion"]?.string, v == "1.0.0" else {
            throw fail("read oci-layout", "imageLayoutVersion is not 1.0.0")
        }
    }

    public func hasBlob(_ descriptor: Descriptor) async throws(RegistryError) -> Bool {
        // Present with the right size; a damaged blob is overwritten rather than trusted.
        guard let bytes = try? FileContents.read(blobPath(descriptor.digest)), Int64(bytes.count) == descriptor.size else { return false }
        return sha256Digest(bytes) == descriptor.digest
    }

    public func putBlob(_ bytes: [UInt8], descriptor: Descriptor) async throws(RegistryError) {
        try prepare()
        do { try FileContents.writeAtomically(bytes, to: blobPath(descriptor.digest)) } catch { throw fail("write blob \(descriptor.digest)", "\(error)") }
    }

    func readIndex() throws(RegistryError) -> [JSONValue] {
        let path = "\(directory)/index.json"
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path) } catch { throw fail("read index.json", "\(error)") }
        guard let json = JSONValue.parse(bytes), json["schemaVersion"]?.integer == 2 else { throw fail("read index.json", "not an OCI index (schemaVersion 2)") }
        return json["manifests"]?.array ?? []
    }

    public func putManifest(_ bytes: [UInt8], descriptor: Descriptor, tag: String) async throws(RegistryError) -> String {
        try prepare()
        do { try FileContents.writeAtomically(bytes, to: blobPath(descriptor.digest)) } catch { throw fail("write manifest \(descriptor.digest)", "\(error)") }
        var entries = try readIndex().filter { $0["annotations"]?["org.opencontainers.image.ref.name"]?.string != tag }
        var d = descriptor
        d.annotations["org.opencontainers.image.ref.name"] = tag
        entries.append(d.json)
        let index = JSONValue.object(["schemaVersion": .integer(2), "mediaType": .string(MediaType.index), "manifests": .array(entries)])
        do { try FileContents.writeAtomically(index.canonicalBytes, to: "\(directory)/index.json") } catch { throw fail("write index.json", "\(error)") }
        return descriptor.digest
    }

    public func manifest(_ reference: String, cap: Int) async throws(RegistryError) -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: directory) else { throw fail("open layout", "no such directory") }
        try checkMarker()
        let digest: String
        if Digest.isValid(reference) {
            digest = reference
        } else {
            let matches = try readIndex().filter { $0["annotations"]?["org.opencontainers.image.ref.name"]?.string == reference }
            guard let entry = matches.last else { return nil }
            guard let d = entry["digest"]?.string, Digest.isValid(d) else { throw fail("read index.json", "the entry for '\(reference)' has no sha256 digest") }
            digest = d
        }
        let bytes: [UInt8]
        do { bytes = try FileContents.read(blobPath(digest)) } catch {
            if error.errno == .noSuchFileOrDirectory, Digest.isValid(reference) { return nil }
            throw fail("read manifest \(digest)", "\(error)")
        }
        guard bytes.count <= cap else { throw fail("read manifest \(digest)", "\(bytes.count) bytes, more than a manifest can be (\(cap))") }
        guard sha256Digest(bytes) == digest else { throw fail("read manifest \(digest)", "its bytes hash to \(sha256Digest(bytes)): the layout is damaged") }
        return bytes
    }

    public func blob(_ descriptor: Descriptor) async throws(RegistryError) -> [UInt8] {
        do { return try FileContents.read(blobPath(descriptor.digest)) } catch { throw fail("read blob \(descriptor.digest)", "\(error)") }
    }

    /// A layout has no referrers index: its signatures are found by their `sha256-<hex>.sig` tag.
    public func referrers(of digest: String, artifactType: String) async throws(RegistryError) -> [Descriptor] { [] }

    public func close() async {}
}
