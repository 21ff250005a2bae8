import TransportText
import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A repository in a registry, over the OCI distribution API: HEAD and GET of blobs and
/// manifests, monolithic blob upload (POST, then PUT with `?digest=`), manifest PUT by tag.
/// Authentication as docker does it: anonymous first; on a 401 the challenge decides — `Basic`
/// retries with the config.json credentials, `Bearer` fetches a token from the realm (with those
/// credentials when there are any) for this repository's scope and retries with it.
public final class RegistryStore: ArtifactStore, Sendable {
    public let reference: RegistryReference
    let base: String
    let credentials: RegistryCredentials?
    /// The scope asked of a token service: pushes need `pull,push`.
    let actions: String
    let http: HTTPClient
    /// The Authorization header that last worked (basic or a bearer token), sent up front after.
    let authorization = Mutex<String?>(nil)

    public var name: String { "\(reference.host)/\(reference.repository)" }

    public init(_ reference: RegistryReference, plainHTTP: Bool, credentials: RegistryCredentials?, push: Bool) {
        self.reference = reference
        base = (plainHTTP ? "http://" : "https://") + reference.host
        self.credentials = credentials
        actions = push ? "pull,push" : "pull"
        var c = HTTPClient.Configuration()
        c.decompression = .disabled
        c.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(10), read: .seconds(120))
        c.redirectConfiguration = .follow(max: 5, allowCycles: false)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }

    public func close() async {
        try? await http.shutdown()
    }

    func fail(_ step: String, _ why: String, status: Int? = nil) -> RegistryError { RegistryError(name, step: step, why, status: status) }

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// One request, authenticated as the registry asks; the body read up to `cap` bytes.
    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, cap: Int, step: String) async throws(RegistryError) -> Answer {
        var challenged = false
        while true {
            var r = HTTPClientRequest(url: url.hasPrefix("http") ? url : base + url)
            r.method = method
            r.headers.add(name: "User-Agent", value: "balancer")
            for (k, v) in headers { r.headers.add(name: k, value: v) }
            if let auth = authorization.withLock({ $0 }) { r.headers.add(name: "Authorization", value: auth) }
            if let body {
                r.body = .bytes(ByteBuffer(bytes: body))
                r.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            } else if method == .PUT || method == .POST {
                r.headers.replaceOrAdd(name: "Content-Length", value: "0")
            }
            let answer: Answer
            do {
                let response = try await http.execute(r, timeout: .seconds(300))
                let status = Int(response.status.code)
                var collected: [UInt8] = []
                if method != .HEAD {
                    // An error body is read only for its message.
                    let limit = (200..<300).contains(status) ? cap : 64 << 10
                    do {
                        collected = Array(buffer: try await response.body.collect(upTo: limit))
                    } catch is NIOTooManyBytesError {
                        throw fail(step, "the answer is larger than \(limit) bytes")
                    }
                }
                answer = Answer(status: status, headers: response.headers, body: collected)
            } catch let e as RegistryError {
                throw e
            } catch {
                throw fail(step, "\(method) \(r.url): \(Self.transportText(error, plainHTTP: base.hasPrefix("http:")))")
            }
            if answer.status == 401, !challenged {
                challenged = true
                try await authenticate(answer.headers.first(name: "WWW-Authenticate"), step: step)
                continue
            }
            return answer
        }
    }

    /// Answers a 401's challenge: sets the Authorization header the retry sends.
    func authenticate(_ challenge: String?, step: String) async throws(RegistryError) {
        guard let challenge, let parsed = Challenge.parse(challenge) else {
            throw fail(step, "401 Unauthorized without a WWW-Authenticate challenge", status: 401)
        }
        switch parsed.scheme.lowercased() {
        case "basic":
            guard let credentials else {
                throw fail(step, "401 Unauthorized: the registry asks for basic credentials and the registry configuration has none for \(reference.host)", status: 401)
            }
            authorization.withLock { $0 = credentials.basicHeader }
        case "bearer":
            guard let realm = parsed.parameters["realm"] else { throw fail(step, "Bearer challenge without a realm: \(challenge)", status: 401) }
            let scope = "repository:\(reference.repository):\(actions)"
            var components = URLComponents(string: realm)
            var items = components?.queryItems ?? []
            if let service = parsed.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
            items.append(URLQueryItem(name: "scope", value: scope))
            components?.queryItems = items
            guard let url = components?.string else { throw fail("token from \(realm)", "the realm is not a URL") }
            var r = HTTPClientRequest(url: url)
            r.headers.add(name: "User-Agent", value: "balancer")
            if let credentials { r.headers.add(name: "Authorization", value: credentials.basicHeader) }
            let body: [UInt8]
            let status: Int
            do {
                let response = try await http.execute(r, timeout: .seconds(60))
                status = Int(response.status.code)
                body = Array(buffer: try await response.body.collect(upTo: 1 << 20))
            } catch {
                throw fail("token from \(realm)", Self.transportText(error, plainHTTP: realm.hasPrefix("http:")))
            }
            guard status == 200 else {
                throw fail("token from \(realm)", "\(status)\(status == 401 ? " (the credentials were refused)" : ""): \(String(decoding: body.prefix(300), as: UTF8.self))", status: status)
            }
            guard let json = JSONValue.parse(body), let token = json["token"]?.string ?? json["access_token"]?.string else {
                throw fail("token from \(realm)", "the answer has no token")
            }
            authorization.withLock { $0 = "Bearer \(token)" }
        default:
            throw fail(step, "401 Unauthorized with an unsupported challenge: \(challenge)", status: 401)
        }
    }

    /// A transport failure in words, with the hint a local registry usually needs.
    static func transportText(_ error: any Error, plainHTTP: Bool) -> String {
        TransportErrors.text(error, tlsHint: plainHTTP ? "" : " (a registry that speaks plain HTTP needs --plain-http)")
    }

    func unexpected(_ step: String, _ a: Answer) -> RegistryError {
        var why = "\(a.status)"
        if a.status == 401 { why += " Unauthorized (the credentials were refused, or none were found for \(reference.host))" }
        if a.status == 403 { why += " Forbidden" }
        // The distribution spec's error body: {"errors":[{"code","message"}]}.
        if let errors = JSONValue.parse(a.body)?["errors"]?.array, !errors.isEmpty {
            why += ": " + errors.map { "\($0["code"]?.string ?? "") \($0["message"]?.string ?? "")" }.joined(separator: "; ")
        } else if !a.body.isEmpty {
            why += ": " + String(decoding: a.body.prefix(300), as: UTF8.self)
        }
        return fail(step, why, status: a.status)
    }

    var repositoryPath: String { "/v2/\(reference.repository)" }

    public func hasBlob(_ descriptor: Descriptor) async throws(RegistryError) -> Bool {
        let step = "check blob \(descriptor.digest)"
        let a = try await send(.HEAD, "\(repositoryPath)/blobs/\(descriptor.digest)", cap: 0, step: step)
        switch a.status {
        case 200: return true
        case 404: return false
        default: throw unexpected(step, a)
        }
    }

    public func putBlob(_ bytes: [UInt8], descriptor: Descriptor) async throws(RegistryError) {
        let start = "start upload of \(descriptor.digest)"
        let a = try await send(.POST, "\(repositoryPath)/blobs/uploads/", cap: 64 << 10, step: start)
        guard a.status == 202, let location = a.headers.first(name: "Location") else { throw unexpected(start, a) }
        // Location may be absolute or relative to the registry, and may carry a query already.
        let url = (location.hasPrefix("http") ? location : base + location) + (location.contains("?") ? "&" : "?")
            + "digest=" + (descriptor.digest.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? descriptor.digest)
        let upload = "upload blob \(descriptor.digest)"
        let b = try await send(.PUT, url, headers: [("Content-Type", "application/octet-stream")], body: bytes, cap: 64 << 10, step: upload)
        guard b.status == 201 else { throw unexpected(upload, b) }
    }

    public func putManifest(_ bytes: [UInt8], descriptor: Descriptor, tag: String) async throws(RegistryError) -> String {
        let step = "put manifest \(tag)"
        let a = try await send(.PUT, "\(repositoryPath)/manifests/\(tag)", headers: [("Content-Type", MediaType.manifest)], body: bytes, cap: 64 << 10, step: step)
        guard a.status == 201 else { throw unexpected(step, a) }
        return a.headers.first(name: "Docker-Content-Digest") ?? descriptor.digest
    }

    public func manifest(_ reference: String, cap: Int) async throws(RegistryError) -> [UInt8]? {
        let step = "get manifest \(reference)"
        let accept = [MediaType.manifest, MediaType.index, "application/vnd.docker.distribution.manifest.v2+json",
                      "application/vnd.docker.distribution.manifest.list.v2+json"].joined(separator: ", ")
        let a = try await send(.GET, "\(repositoryPath)/manifests/\(reference)", headers: [("Accept", accept)], cap: cap, step: step)
        switch a.status {
        case 200: return a.body
        case 404: return nil
        default: throw unexpected(step, a)
        }
    }

    /// `GET /v2/<repo>/referrers/<digest>?artifactType=…`. A registry without the API answers
    /// 404 (docker-registry 2.8) or something else that is not an index: that is "none", not a
    /// failure, since the cosign-scheme tag was looked up first.
    public func referrers(of digest: String, artifactType: String) async throws(RegistryError) -> [Descriptor] {
        let type = artifactType.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? artifactType
        let a = try await send(.GET, "\(repositoryPath)/referrers/\(digest)?artifactType=\(type)", headers: [("Accept", MediaType.index)],
                               cap: manifestCap, step: "get referrers of \(digest)")
        guard a.status == 200, let index = JSONValue.parse(a.body), index["mediaType"]?.string == MediaType.index || index["manifests"] != nil else { return [] }
        // The filter is optional for the registry: applied again here.
        return (index["manifests"]?.array ?? []).compactMap { Descriptor(json: $0) }.filter { $0.artifactType == artifactType && Digest.isValid($0.digest) }
    }

    public func blob(_ descriptor: Descriptor) async throws(RegistryError) -> [UInt8] {
        let step = "get blob \(descriptor.digest)"
        let a = try await send(.GET, "\(repositoryPath)/blobs/\(descriptor.digest)", cap: Int(clamping: descriptor.size), step: step)
        guard a.status == 200 else { throw unexpected(step, a) }
        return a.body
    }
}

/// A `WWW-Authenticate` challenge: the scheme and its `key="value"` parameters (values may hold
/// commas inside quotes, as `scope="repository:a:pull,push"` does).
public struct Challenge: Sendable, Equatable {
    public var scheme: String
    public var parameters: [String: String]

    public static func parse(_ text: String) -> Challenge? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return trimmed.isEmpty ? nil : Challenge(scheme: trimmed, parameters: [:]) }
        let scheme = String(trimmed[..<space])
        var parameters: [String: String] = [:]
        var rest = trimmed[trimmed.index(after: space)...]
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
        return Challenge(scheme: scheme, parameters: parameters)
    }
}
