import AsyncHTTPClient
import Compiler
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// A kind the watcher lists and watches, and where the API serves it.
public struct KubeResource: Sendable, Hashable {
    public var kind: String
    public var apiVersion: String
    public var path: String

    public static let services = KubeResource(kind: "Service", apiVersion: "v1", path: "/api/v1/services")
    public static let endpointSlices = KubeResource(kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                                                    path: "/apis/discovery.k8s.io/v1/endpointslices")
    public static let nodes = KubeResource(kind: "Node", apiVersion: "v1", path: "/api/v1/nodes")
    public static let pods = KubeResource(kind: "Pod", apiVersion: "v1", path: "/api/v1/pods")
    public static let localRedirectPolicies = KubeResource(kind: "LocalRedirectPolicy", apiVersion: "balancing.elf.io/v1beta1",
                                                           path: "/apis/balancing.elf.io/v1beta1/localredirectpolicies")
    public static let balancingPolicies = KubeResource(kind: "BalancingPolicy", apiVersion: "balancing.elf.io/v1beta1",
                                                       path: "/apis/balancing.elf.io/v1beta1/balancingpolicies")
    /// The six kinds the compiler reads.
    public static let all: [KubeResource] = [.services, .endpointSlices, .nodes, .pods, .localRedirectPolicies, .balancingPolicies]
}

public struct KubeError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    init(_ d: String, status: Int? = nil) {
        description = d
        self.status = status
    }
}

/// List and watch over HTTPS (async-http-client and swift-nio-ssl), authenticated as the
/// kubeconfig or service account says.
public final class KubeClient: Sendable {
    let http: HTTPClient
    let config: KubeClientConfig
    /// A tokenFile is read again after this long (projected service-account tokens rotate).
    static let tokenTTL: Duration = .seconds(60)
    let token = Mutex<(value: String?, read: ContinuousClock.Instant?)>((nil, nil))

    public init(config: KubeClientConfig) throws(KubeError) {
        self.config = config
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = config.certificateAuthority {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
            if let cert = config.clientCertificate, let key = config.clientKey {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw KubeError("\(config.origin): unusable certificate or key: \(error)")
        }
        var c = HTTPClient.Configuration(tlsConfiguration: tls)
        c.decompression = .disabled
        // A refused or unreachable server is retried by the reflector's back-off, not by the
        // client; a watch reads without a timeout (it ends when the server's timeoutSeconds does).
        c.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: nil)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    func bearer() -> String? {
        if let t = config.token { return t }
        guard let file = config.tokenFile else { return nil }
        let now = ContinuousClock.now
        return token.withLock { t in
            if let read = t.read, now - read < Self.tokenTTL { return t.value }
            if let data = FileManager.default.contents(atPath: file) {
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                t = (text.isEmpty ? nil : text, now)
            }
            return t.value
        }
    }

    func request(_ pathAndQuery: String) -> HTTPClientRequest {
        var server = config.server
        while server.hasSuffix("/") { server.removeLast() }
        var r = HTTPClientRequest(url: server + pathAndQuery)
        r.headers.add(name: "Accept", value: "application/json")
        r.headers.add(name: "User-Agent", value: "balancer")
        if let t = bearer() { r.headers.add(name: "Authorization", value: "Bearer \(t)") }
        return r
    }

    static func failure(_ what: String, _ response: HTTPClientResponse) async -> KubeError {
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { Array(buffer: $0) } ?? []
        let message = kubernetesStatusMessage(body) ?? String(decoding: body.prefix(500), as: UTF8.self)
        let hint = response.status.code == 401 ? " (the credentials were refused)"
            : response.status.code == 403 ? " (the ClusterRole must allow get, list and watch)" : ""
        return KubeError("\(what): \(response.status.code) \(response.status.reasonPhrase)\(hint): \(message)", status: Int(response.status.code))
    }

    /// Every object of `resource`, paged with limit/continue, and the version to watch from.
    public func list(_ resource: KubeResource, pageSize: Int = 500) async throws(KubeError) -> (items: [RawListPage.Item], resourceVersion: String) {
        var items: [RawListPage.Item] = []
        var next: String?
        repeat {
            var query = "?limit=\(pageSize)"
            if let next { query += "&continue=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? next)" }
            let what = "list \(resource.kind) (\(config.server)\(resource.path))"
            let page: RawListPage
            do {
                let response = try await http.execute(request(resource.path + query), timeout: .seconds(60))
                guard response.status == .ok else { throw await Self.failure(what, response) }
                let body = try await response.body.collect(upTo: 1 << 30)
                page = try RawListPage.parse(Array(buffer: body), itemKind: resource.kind, apiVersion: resource.apiVersion)
            } catch let e as KubeError {
                throw e
            } catch {
                throw KubeError("\(what): \(error)")
            }
            items += page.items
            // A list continues from the first page's snapshot; its version is the last page's.
            if page.continueToken == nil { return (items, page.resourceVersion) }
            next = page.continueToken
        } while true
    }

    /// Watches `resource` from `resourceVersion` with bookmarks, handing each event to `body`
    /// until it returns false, the server ends the stream (after `timeoutSeconds`), or it breaks.
    public func watch(_ resource: KubeResource, from resourceVersion: String, timeoutSeconds: Int = 300,
                      maxEventBytes: Int = 16 << 20, _ body: (WatchStream.Event) throws -> Bool) async throws {
        let query = "?watch=1&allowWatchBookmarks=true&resourceVersion=\(resourceVersion)&timeoutSeconds=\(timeoutSeconds)"
        let what = "watch \(resource.kind) (\(config.server)\(resource.path))"
        let response = try await http.execute(request(resource.path + query), timeout: .seconds(Int64(timeoutSeconds + 30)))
        guard response.status == .ok else { throw await Self.failure(what, response) }
        var stream = WatchStream(maxLineBytes: maxEventBytes)
        for try await chunk in response.body {
            for event in try stream.feed(chunk.readableBytesView) {
                if try !body(event) { return }
            }
        }
        try stream.finish()
    }
}
