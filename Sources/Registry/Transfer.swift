import FoundationEssentials

/// What a push did: the image manifest's digest, and the signature's tag when one went along.
public struct PushResult: Sendable {
    public var manifestDigest: String
    public var tag: String
    public var signatureTag: String?
    public var blobsUploaded: Int
}

/// What a pull read: the image bytes (digest and size checked) and the signature file's bytes
/// when the store holds one under cosign's tag. The signature is not checked here: that is
/// `balancer verify`, with a key the puller trusts.
public struct PullResult: Sendable {
    public var manifestDigest: String
    public var image: [UInt8]
    public var title: String?
    public var signature: [UInt8]?
    /// How the signature was found: its tag, or the referrers API and the manifest's digest.
    public var signatureSource: String?
}

public enum Transfer {
    /// The largest image pulled (the datapath's tables are far smaller).
    public static let imageCap: Int64 = 1 << 32
    /// The largest signature pulled (a base64 DER signature is about 100 bytes).
    public static let signatureCap: Int64 = 64 << 10

    /// Pushes the image (and its signature) to `store` under `tag`: blobs first, then the
    /// manifest; the signature's manifest names the image manifest as its `subject` and is
    /// tagged `sha256-<hex>.sig`.
    public static func push(image: [UInt8], title: String, signature: [UInt8]?, signatureTitle: String,
                            to store: some ArtifactStore, tag: String) async throws(RegistryError) -> PushResult {
        var uploaded = 0
        if try await store.putBlobIfAbsent(Descriptor.emptyConfigBytes, descriptor: .emptyConfig) { uploaded += 1 }
        let manifest = ArtifactManifest.image(image, title: title)
        if try await store.putBlobIfAbsent(image, descriptor: manifest.layer) { uploaded += 1 }
        let bytes = manifest.bytes
        let descriptor = manifest.descriptor
        let digest = try await store.putManifest(bytes, descriptor: descriptor, tag: tag)
        guard digest == descriptor.digest else {
            throw RegistryError(store.name, step: "put manifest \(tag)", "the store answered digest \(digest), the manifest sent is \(descriptor.digest)")
        }
        var signatureTag: String?
        if let signature {
            let s = ArtifactManifest.signature(signature, title: signatureTitle, subject: descriptor)
            if try await store.putBlobIfAbsent(signature, descriptor: s.layer) { uploaded += 1 }
            let t = Digest.signatureTag(of: descriptor.digest)
            _ = try await store.putManifest(s.bytes, descriptor: s.descriptor, tag: t)
            signatureTag = t
        }
        return PushResult(manifestDigest: descriptor.digest, tag: tag, signatureTag: signatureTag, blobsUploaded: uploaded)
    }

    /// Pulls the image named `reference` (a tag or digest) from `store`: the manifest must be a
    /// balancer image, the layer's bytes must have its digest and size; then the signature under
    /// cosign's tag, held to the same checks and to naming this manifest as its subject.
    public static func pull(from store: some ArtifactStore, reference: String) async throws(RegistryError) -> PullResult {
        guard let manifestBytes = try await store.manifest(reference, cap: manifestCap) else {
            throw RegistryError(store.name, step: "get manifest \(reference)", "not found")
        }
        let digest = sha256Digest(manifestBytes)
        if Digest.isValid(reference), reference != digest {
            throw RegistryError(store.name, step: "get manifest \(reference)", "the bytes received hash to \(digest)")
        }
        let manifest = try ArtifactManifest.parse(manifestBytes, expecting: MediaType.image, where: "\(store.name) manifest \(reference)")
        let image = try await verifiedBlob(manifest.layer, from: store, cap: imageCap, what: "image layer")
        var signature: [UInt8]?
        var source: String?
        let sigTag = Digest.signatureTag(of: digest)
        var found: (bytes: [UInt8], name: String)?
        if let bytes = try await store.manifest(sigTag, cap: manifestCap) {
            found = (bytes, sigTag)
        } else if let referrer = try await store.referrers(of: digest, artifactType: MediaType.signature).first,
                  let bytes = try await store.manifest(referrer.digest, cap: manifestCap) {
            guard sha256Digest(bytes) == referrer.digest else {
                throw RegistryError(store.name, step: "get signature \(referrer.digest)", "the bytes received hash to \(sha256Digest(bytes))")
            }
            found = (bytes, "referrers API: \(referrer.digest)")
        }
        if let found {
            let s = try ArtifactManifest.parse(found.bytes, expecting: MediaType.signature, where: "\(store.name) manifest \(found.name)")
            if let subject = s.subject, subject.digest != digest {
                throw RegistryError(store.name, step: "get signature \(found.name)", "its subject is \(subject.digest), not the image manifest \(digest)")
            }
            signature = try await verifiedBlob(s.layer, from: store, cap: signatureCap, what: "signature layer")
            source = found.name
        }
        return PullResult(manifestDigest: digest, image: image, title: manifest.layer.annotations["org.opencontainers.image.title"], signature: signature, signatureSource: source)
    }

    static func verifiedBlob(_ d: Descriptor, from store: some ArtifactStore, cap: Int64, what: String) async throws(RegistryError) -> [UInt8] {
        let step = "get \(what) \(d.digest)"
        guard d.size <= cap else { throw RegistryError(store.name, step: step, "size \(d.size) is more than \(cap) bytes") }
        let bytes = try await store.blob(d)
        guard Int64(bytes.count) == d.size else {
            throw RegistryError(store.name, step: step, "\(bytes.count) bytes received, the manifest says \(d.size)")
        }
        let got = sha256Digest(bytes)
        guard got == d.digest else { throw RegistryError(store.name, step: step, "the bytes received hash to \(got), not the manifest's digest") }
        return bytes
    }
}
