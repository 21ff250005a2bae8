import Crypto
import FoundationEssentials

/// The media types of balancer's artifacts (docs/registry.md). Our own artifactType, so that
/// registries, ORAS and `balancer pull` can tell a map image from a container image.
public enum MediaType {
    public static let manifest = "application/vnd.oci.image.manifest.v1+json"
    public static let index = "application/vnd.oci.image.index.v1+json"
    public static let empty = "application/vnd.oci.empty.v1+json"
    public static let image = "application/vnd.balancer.image.v1"
    public static let signature = "application/vnd.balancer.signature.v1"
}

/// `sha256:<hex>` of some bytes.
public func sha256Digest(_ bytes: [UInt8]) -> String {
    "sha256:" + SHA256.hash(data: bytes).map { String($0, radix: 16).leftPadded(2) }.joined()
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// An OCI content descriptor: what a manifest says about a blob (or another manifest).
public struct Descriptor: Sendable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var artifactType: String?
    public var annotations: [String: String]
    /// Only the empty config carries its bytes inline (`data`), as OCI 1.1 recommends.
    public var data: String?

    public init(mediaType: String, digest: String, size: Int64, artifactType: String? = nil, annotations: [String: String] = [:], data: String? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
        self.data = data
    }

    /// The descriptor of `bytes` under `mediaType`.
    public static func of(_ bytes: [UInt8], mediaType: String, annotations: [String: String] = [:]) -> Descriptor {
        Descriptor(mediaType: mediaType, digest: sha256Digest(bytes), size: Int64(bytes.count), annotations: annotations)
    }

    /// OCI 1.1's empty descriptor: the two bytes `{}`, used as the config of artifacts without one.
    public static let emptyConfigBytes: [UInt8] = Array("{}".utf8)
    public static let emptyConfig = Descriptor(
        mediaType: MediaType.empty,
        digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        size: 2, data: "e30=")

    public var json: JSONValue {
        var o: [String: JSONValue] = ["mediaType": .string(mediaType), "digest": .string(digest), "size": .integer(size)]
        if let artifactType { o["artifactType"] = .string(artifactType) }
        if !annotations.isEmpty { o["annotations"] = .object(annotations.mapValues { .string($0) }) }
        if let data { o["data"] = .string(data) }
        return .object(o)
    }

    /// Reads a descriptor; nil when a required field is missing or of the wrong type.
    public init?(json: JSONValue) {
        guard let mediaType = json["mediaType"]?.string, let digest = json["digest"]?.string, let size = json["size"]?.integer else { return nil }
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        artifactType = json["artifactType"]?.string
        var a: [String: String] = [:]
        for (k, v) in json["annotations"]?.object ?? [:] { if let s = v.string { a[k] = s } }
        annotations = a
        data = json["data"]?.string
    }
}

/// An OCI 1.1 artifact manifest: our artifactType, the empty config, one layer, and for a
/// signature the subject it signs. Its bytes are canonical JSON (no timestamp anywhere), so
/// pushing the same file twice gives the same manifest digest.
public struct ArtifactManifest: Sendable, Equatable {
    public var artifactType: String
    public var layer: Descriptor
    public var subject: Descriptor?

    public init(artifactType: String, layer: Descriptor, subject: Descriptor? = nil) {
        self.artifactType = artifactType
        self.layer = layer
        self.subject = subject
    }

    /// The manifest of a map image file: its bytes as the one layer, titled with the file name.
    public static func image(_ bytes: [UInt8], title: String) -> ArtifactManifest {
        ArtifactManifest(artifactType: MediaType.image,
                         layer: .of(bytes, mediaType: MediaType.image, annotations: ["org.opencontainers.image.title": title]))
    }

    /// The manifest of a detached signature (`balancer sign`'s file) of the image manifest `subject`.
    public static func signature(_ bytes: [UInt8], title: String, subject: Descriptor) -> ArtifactManifest {
        ArtifactManifest(artifactType: MediaType.signature,
                         layer: .of(bytes, mediaType: MediaType.signature, annotations: ["org.opencontainers.image.title": title]),
                         subject: subject)
    }

    public var bytes: [UInt8] {
        var o: [String: JSONValue] = [
            "schemaVersion": .integer(2),
            "mediaType": .string(MediaType.manifest),
            "artifactType": .string(artifactType),
            "config": Descriptor.emptyConfig.json,
            "layers": .array([layer.json]),
        ]
        if let subject { o["subject"] = subject.json }
        return JSONValue.object(o).canonicalBytes
    }

    /// This manifest's descriptor, as an index or a `subject` names it.
    public var descriptor: Descriptor {
        var d = Descriptor.of(bytes, mediaType: MediaType.manifest)
        d.artifactType = artifactType
        return d
    }

    /// Reads a manifest someone else may have written, refusing what is not one of ours of the
    /// type expected: wrong media type, another artifactType, not exactly one layer of that type.
    /// `where` names the source for the message.
    public static func parse(_ bytes: [UInt8], expecting type: String, where source: String) throws(RegistryError) -> ArtifactManifest {
        func refuse(_ why: String) -> RegistryError { RegistryError(source, step: "read manifest", why) }
        guard let json = JSONValue.parse(bytes), json.object != nil else { throw refuse("not a JSON object") }
        let mediaType = json["mediaType"]?.string
        if mediaType == MediaType.index || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
            throw refuse("an image index (\(mediaType ?? "")), not a balancer artifact")
        }
        guard mediaType == nil || mediaType == MediaType.manifest else {
            throw refuse("media type \(mediaType ?? "") is not \(MediaType.manifest) (not a balancer artifact; a container image?)")
        }
        guard json["schemaVersion"]?.integer == 2 else { throw refuse("schemaVersion is not 2") }
        // OCI 1.1: artifactType, or for tools that predate it the config's media type.
        let configType = json["config"].flatMap { $0["mediaType"]?.string }
        let artifactType = json["artifactType"]?.string ?? configType
        guard artifactType == type else {
            throw refuse("artifactType is \(artifactType.map { "'\($0)'" } ?? "missing"), expected '\(type)'")
        }
        guard let layers = json["layers"]?.array, layers.count == 1 else {
            throw refuse("expected exactly one layer, found \(json["layers"]?.array?.count ?? 0)")
        }
        guard let layer = Descriptor(json: layers[0]) else { throw refuse("layer descriptor lacks mediaType, digest or size") }
        guard layer.mediaType == type else { throw refuse("layer media type is '\(layer.mediaType)', expected '\(type)'") }
        guard Digest.isValid(layer.digest) else { throw refuse("layer digest '\(layer.digest)' is not sha256:<64 hex>") }
        guard layer.size >= 0 else { throw refuse("layer size \(layer.size) is negative") }
        return ArtifactManifest(artifactType: type, layer: layer, subject: json["subject"].flatMap { Descriptor(json: $0) })
    }
}

public enum Digest {
    /// `sha256:` and 64 lowercase hex digits: the only algorithm we write or accept.
    public static func isValid(_ s: String) -> Bool {
        guard s.hasPrefix("sha256:") else { return false }
        let hex = s.dropFirst(7)
        return hex.count == 64 && hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// cosign's tag for the signature of the manifest `digest`: `sha256-<hex>.sig`.
    public static func signatureTag(of digest: String) -> String {
        digest.replacing(":", with: "-") + ".sig"
    }
}

/// A failure, naming where (registry and repository, or layout directory), the step and why.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public var source: String
    public var step: String
    public var message: String
    /// The HTTP status when a registry answered with one (404 tells "absent" from failure).
    public var status: Int?

    public init(_ source: String, step: String, _ message: String, status: Int? = nil) {
        self.source = source
        self.step = step
        self.message = message
        self.status = status
    }

    public var description: String { "\(source): \(step): \(message)" }
}
