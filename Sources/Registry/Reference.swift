/// Where an artifact goes or comes from: a repository in a registry (`host[:port]/repo[:tag|@digest]`)
/// or an OCI image layout directory (`oci:DIR[:TAG]`), the air-gap format skopeo and oras read.
public enum ArtifactReference: Sendable, Equatable, CustomStringConvertible {
    case registry(RegistryReference)
    case layout(LayoutReference)

    /// Parses REF. `oci:` first: a layout path may hold anything a file name can.
    public static func parse(_ text: String) throws(RegistryError) -> ArtifactReference {
        if text.hasPrefix("oci:") { return .layout(try LayoutReference.parse(text)) }
        return .registry(try RegistryReference.parse(text))
    }

    public var description: String {
        switch self {
        case .registry(let r): r.description
        case .layout(let l): l.description
        }
    }
}

/// `host[:port]/repository[:tag][@sha256:hex]`. The host is always the first component: there is
/// no default registry (a map image has no business on Docker Hub by accident).
public struct RegistryReference: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var repository: String
    public var tag: String?
    public var digest: String?

    public init(host: String, repository: String, tag: String? = nil, digest: String? = nil) {
        self.host = host
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// The tag or digest a GET asks for: the digest when both are given (it pins the bytes).
    public var reference: String? { digest ?? tag }

    public var description: String {
        "\(host)/\(repository)" + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "")
    }

    public static func parse(_ text: String) throws(RegistryError) -> RegistryReference {
        func refuse(_ why: String) -> RegistryError { RegistryError("reference '\(text)'", step: "parse", why) }
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard let d = digest, Digest.isValid(d) else { throw refuse("digest '\(digest ?? "")' is not sha256:<64 lowercase hex>") }
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw refuse("expected host[:port]/repository[:tag|@sha256:…] (or oci:DIR:TAG for a layout directory)")
        }
        let host = String(rest[..<slash])
        guard !host.isEmpty, host.utf8.allSatisfy({ isHostByte($0) }) else { throw refuse("host '\(host)' is not a host name or address with an optional port") }
        var path = rest[rest.index(after: slash)...]
        var tag: String?
        // A colon after the last slash starts the tag (the host's port colon is already gone).
        if let colon = path.lastIndex(of: ":"), !path[colon...].contains("/") {
            tag = String(path[path.index(after: colon)...])
            path = path[..<colon]
            guard let t = tag, isValidTag(t) else { throw refuse("tag '\(tag ?? "")' is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}") }
        }
        let repository = String(path)
        guard isValidRepository(repository) else {
            throw refuse("repository '\(repository)' is not lowercase components [a-z0-9]+ joined by '.', '_', '__' or '-', separated by '/'")
        }
        return RegistryReference(host: host, repository: repository, tag: tag, digest: digest)
    }

    static func isHostByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: ":") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")
    }

    /// The distribution spec's tag grammar.
    public static func isValidTag(_ t: String) -> Bool {
        let b = Array(t.utf8)
        guard let first = b.first, b.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == UInt8(ascii: "_") }
        return word(first) && b.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// The distribution spec's repository grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/…)*`.
    public static func isValidRepository(_ r: String) -> Bool {
        guard !r.isEmpty, r.utf8.count <= 255 else { return false }
        for component in r.split(separator: "/", omittingEmptySubsequences: false) {
            let b = Array(component.utf8)
            func alnum(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x7A).contains(c) }
            guard let first = b.first, let last = b.last, alnum(first), alnum(last) else { return false }
            var i = 0
            while i < b.count {
                if alnum(b[i]) { i += 1; continue }
                // A separator: '.', '_', '__' or a run of '-', always between alphanumerics.
                var j = i
                if b[i] == UInt8(ascii: ".") { j += 1 }
                else if b[i] == UInt8(ascii: "_") { j += 1; if j < b.count, b[j] == UInt8(ascii: "_") { j += 1 } }
                else if b[i] == UInt8(ascii: "-") { while j < b.count, b[j] == UInt8(ascii: "-") { j += 1 } }
                else { return false }
                guard j < b.count, alnum(b[j]) else { return false }
                i = j
            }
        }
        return true
    }
}

/// `oci:DIR[:TAG]`: an OCI image layout directory and the `org.opencontainers.image.ref.name` of
/// one manifest in its `index.json` (skopeo's syntax; the tag is the text after the last colon).
public struct LayoutReference: Sendable, Equatable, CustomStringConvertible {
    public var directory: String
    public var tag: String?
    /// `oci:DIR@sha256:…`: a manifest by digest.
    public var digest: String?

    public init(directory: String, tag: String? = nil, digest: String? = nil) {
        self.directory = directory
        self.tag = tag
        self.digest = digest
    }

    public var description: String { "oci:\(directory)" + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "") }

    public static func parse(_ text: String) throws(RegistryError) -> LayoutReference {
        func refuse(_ why: String) -> RegistryError { RegistryError("reference '\(text)'", step: "parse", why) }
        var rest = Substring(text.dropFirst(4))
        var digest: String?
        if let at = rest.lastIndex(of: "@"), rest[at...].hasPrefix("@sha256:") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard let d = digest, Digest.isValid(d) else { throw refuse("digest '\(digest ?? "")' is not sha256:<64 lowercase hex>") }
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            guard let t = tag, RegistryReference.isValidTag(t) else { throw refuse("tag '\(tag ?? "")' is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}") }
        }
        guard !rest.isEmpty else { throw refuse("expected oci:DIR:TAG (the layout directory is missing)") }
        return LayoutReference(directory: String(rest), tag: tag, digest: digest)
    }
}
