import TransportText
import AsyncHTTPClient
import FoundationEssentials
import MapImage
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// A kind the watcher lists and watches, and where the API serves it.
public struct KubeResource: Sendable, Hashable {
    public var kind: String
    public var apiVersion: String
    public var path: String
    /// Whether its objects live in namespaces (Node and the policies do not).
    public var namespaced: Bool
    /// A kind a server may not serve (a CustomResourceDefinition's, or one newer than the
    /// server): a 404 means there are no objects of it. For the other kinds a 404 is an error (the
    /// last state stays).
    public var custom: Bool
    /// Why a server would not serve it, for the log.
    public var whyAbsent: String
    /// An optional kind that a ClusterRole of an earlier version does not grant: a 403 then means
    /// "none" too (said at warning level, naming the rule to add), so an upgraded agent under its
    /// old RBAC still compiles.
    public var forbiddenMeansAbsent = false
    /// A field selector for every list and watch (`spec.nodeName=worker-1`): the server sends only
    /// the objects it selects, and events for objects leaving it as deletions.
    public var fieldSelector: String?

    /// A label selector for every list and watch (`app=dns,tier in (a,b)`), in the API's syntax.
    public var labelSelector: String?

    /// This resource with these selectors.
    public func selecting(fields: String? = nil, labels: String? = nil) -> KubeResource {
        var r = self
        r.fieldSelector = fields
        r.labelSelector = labels
        return r
    }

    /// The selectors as query parameters (`&fieldSelector=…&labelSelector=…`), or nothing.
    var selectorQuery: String {
        func encoded(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        return (fieldSelector.map { "&fieldSelector=" + encoded($0) } ?? "") + (labelSelector.map { "&labelSelector=" + encoded($0) } ?? "")
    }

    public init(kind: String, apiVersion: String, path: String, namespaced: Bool, custom: Bool = false,
                whyAbsent: String = "its CustomResourceDefinition is not installed") {
        self.kind = kind
        self.apiVersion = apiVersion
        self.path = path
        self.namespaced = namespaced
        self.custom = custom
        self.whyAbsent = whyAbsent
    }

    /// What its responses are checked against.
    public var wire: WireResource { WireResource(kind: kind, apiVersion: apiVersion, namespaced: namespaced) }

    public static let services = KubeResource(kind: "Service", apiVersion: "v1", path: "/api/v1/services", namespaced: true)
    public static let endpointSlices = KubeResource(kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                                                    path: "/apis/discovery.k8s.io/v1/endpointslices", namespaced: true)
    public static let nodes = KubeResource(kind: "Node", apiVersion: "v1", path: "/api/v1/nodes", namespaced: false)
    public static let pods = KubeResource(kind: "Pod", apiVersion: "v1", path: "/api/v1/pods", namespaced: true)
    public static let localRedirectPolicies = KubeResource(kind: "LocalRedirectPolicy", apiVersion: "balancing.elf.io/v1beta1",
                                                           path: "/apis/balancing.elf.io/v1beta1/localredirectpolicies", namespaced: false, custom: true)
    public static let balancingPolicies = KubeResource(kind: "BalancingPolicy", apiVersion: "balancing.elf.io/v1beta1",
                                                       path: "/apis/balancing.elf.io/v1beta1/balancingpolicies", namespaced: false, custom: true)
    /// ServiceCIDR is GA (networking.k8s.io/v1) from Kubernetes 1.33; an older server has none.
    public static let serviceCIDRs: KubeResource = {
        var r = KubeResource(kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1", path: "/apis/networking.k8s.io/v1/servicecidrs",
                             namespaced: false, custom: true,
                             whyAbsent: "the API server serves no networking.k8s.io/v1 ServiceCIDR (before Kubernetes 1.33)")
        r.forbiddenMeansAbsent = true
        return r
    }()
    /// The seven kinds the compiler reads.
    public static let all: [KubeResource] = [.services, .endpointSlices, .nodes, .pods, .localRedirectPolicies, .balancingPolicies, .serviceCIDRs]
    /// The Multi-Cluster Services API (KEP-1645): a cluster without its CRDs has none; an agent
    /// whose ClusterRole does not grant them is told so and goes on without them.
    public static let serviceImports: KubeResource = {
        var r = KubeResource(kind: "ServiceImport", apiVersion: "multicluster.x-k8s.io/v1alpha1",
                             path: "/apis/multicluster.x-k8s.io/v1alpha1/serviceimports", namespaced: true, custom: true,
                             whyAbsent: "the Multi-Cluster Services CRDs (multicluster.x-k8s.io) are not installed")
        r.forbiddenMeansAbsent = true
        return r
    }()
    public static let serviceExports: KubeResource = {
        var r = KubeResource(kind: "ServiceExport", apiVersion: "multicluster.x-k8s.io/v1alpha1",
                             path: "/apis/multicluster.x-k8s.io/v1alpha1/serviceexports", namespaced: true, custom: true,
                             whyAbsent: "the Multi-Cluster Services CRDs (multicluster.x-k8s.io) are not installed")
        r.forbiddenMeansAbsent = true
        return r
    }()
    /// What `watch --cluster` reads of each cluster: every kind, and the MCS API's.
    public static let multiCluster: [KubeResource] = all + [.serviceImports, .serviceExports]
}

/// How much of the API server's answers the client takes.
///
/// An object is bounded by what the API server stores and accepts: etcd refuses a request larger
/// than its `--max-request-bytes` (1.5 MiB by default), and the apiserver refuses a request body
/// over 3 MiB, so no object a client wrote carries more than ~3 MiB of JSON. The default object
/// cap, 4 MiB, leaves room above that for what the server adds (status, managedFields) and for
/// JSON being larger than the protobuf etcd holds; it bounds one watch event (plus its envelope)
/// and each list item. A list page holds at most the page size × that, so the page size is derived
/// from the two caps (`maxResponseBytes / maxObjectBytes`, at most client-go's 500): with the
/// defaults, 64 objects per page within 256 MiB, a page that a legitimate server can never make
/// larger than the cap, while a server streaming without end is cut off at 256 MiB instead of
/// the 1 GiB buffered before. A cluster whose etcd allows larger requests raises both.
public struct KubeLimits: Sendable, Equatable {
    public var maxObjectBytes: Int
    public var maxResponseBytes: Int

    public static let defaultMaxObjectBytes = 4 << 20
    public static let defaultMaxResponseBytes = 256 << 20

    public init(maxObjectBytes: Int = KubeLimits.defaultMaxObjectBytes, maxResponseBytes: Int = KubeLimits.defaultMaxResponseBytes) {
        self.maxObjectBytes = max(1, maxObjectBytes)
        self.maxResponseBytes = max(1, maxResponseBytes)
    }

    /// Objects asked for per list page, as client-go's reflector asks. A page over the response
    /// cap is asked again with half as many objects (down to one), so the cap bounds memory
    /// without costing a large cluster's list eight times the requests.
    public var pageSize: Int { 500 }
    /// A watch line: one object and its event envelope (`{"type":"MODIFIED","object":…}`).
    var maxEventBytes: Int { maxObjectBytes + 4096 }
}

public struct KubeError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as the metric `balancer_api_errors_total{reason}` counts it.
    public enum Reason: Sendable, Equatable {
        /// The server could not be reached, or the connection broke.
        case transport
        /// An HTTP error status (the label is http_<code>).
        case http
        /// The response was not what the resource asked for (WireJSON's checks: malformed, a
        /// Status, another kind or apiVersion, no identity or resourceVersion, too large).
        case wire(WireError.Problem)
        /// 410 Gone again with no progress since the last one.
        case gone
        /// A watch ERROR event other than 410.
        case watchError
        /// A watch that ended within a second with no event (client-go's "very short watch").
        case shortWatch
        /// The stream ended inside an event.
        case brokenStream

        /// The metric's label value (http errors are labelled with their code by `KubeError.label`).
        public var label: String {
            switch self {
            case .transport: "transport"
            case .http: "http"
            case .wire(let problem): problem.rawValue
            case .gone: "gone"
            case .watchError: "watch_error"
            case .shortWatch: "short_watch"
            case .brokenStream: "broken_stream"
            }
        }
    }

    public var description: String
    /// The HTTP status (or a watch ERROR's Status code), when the server answered with one.
    public var status: Int?
    public var reason: Reason

    init(_ d: String, status: Int? = nil, reason: Reason? = nil) {
        description = d
        self.status = status
        self.reason = reason ?? (status == nil ? .transport : .http)
    }

    init(_ what: String, _ e: WireError, limits: KubeLimits) {
        var text = "\(what): \(e.message)"
        if e.problem == .tooLarge {
            text += "; raise --max-object-bytes (now \(limits.maxObjectBytes)) if objects this large are expected"
        }
        self.init(text, status: e.status?.code, reason: .wire(e.problem))
    }

    /// The metric label: the reason, or http_<code>.
    public var label: String { reason == .http ? "http_\(status ?? 0)" : reason.label }
}

/// List and watch over HTTPS (async-http-client and swift-nio-ssl), authenticated as the
/// kubeconfig or service account says.
public final class KubeClient: Sendable {
    let http: HTTPClient
    let config: KubeClientConfig
    /// The server URL requests start with (its host replaced by tls-server-name when set).
    let base: String
    let baseTLS: TLSConfiguration
    /// The exec credential plugin's answers, when the kubeconfig user has one.
    public let exec: ExecCredentialSource?
    /// A tokenFile is read again after this long (projected service-account tokens rotate).
    static let tokenTTL: Duration = .seconds(60)
    let token = Mutex<(value: String?, read: ContinuousClock.Instant?)>((nil, nil))
    public let limits: KubeLimits
    /// Sees every request (kind, "list" or "watch"), for the metrics.
    let observe: @Sendable (_ kind: String, _ verb: String) -> Void

    public init(config: KubeClientConfig, limits: KubeLimits = KubeLimits(),
                observe: @escaping @Sendable (_ kind: String, _ verb: String) -> Void = { _, _ in }) throws(KubeError) {
        self.config = config
        self.limits = limits
        self.observe = observe
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
        baseTLS = tls
        var c = HTTPClient.Configuration(tlsConfiguration: tls)
        c.decompression = .disabled
        // A refused or unreachable server is retried by the reflector's back-off, not by the
        // client; a watch reads without a timeout (it ends when the server's timeoutSeconds does).
        c.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: nil)
        // Every kind holds a watch open for minutes: over HTTP/1.1 that is a connection each, and
        // the pool's default of 8 per host would leave a ninth kind's requests queued behind
        // them (the nine kinds of `watch --cluster`). Room for every kind's watch and a list.
        c.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        if let proxy = config.proxyURL {
            do { c.proxy = try ProxySetting.parse(proxy, origin: config.origin) } catch { throw KubeError(error.description) }
        }
        var server = config.server
        while server.hasSuffix("/") { server.removeLast() }
        // tls-server-name: requests go to that name, which the client resolves to the server's
        // own host (async-http-client's dnsOverride), so SNI and the certificate check use the
        // name while the connection goes where the kubeconfig says.
        if let name = config.tlsServerName, var url = URLComponents(string: server), let host = url.host, host != name {
            c.dnsOverride = [name: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host]
            url.host = name
            server = url.string ?? server
        }
        base = server
        exec = config.exec.map { ExecCredentialSource(config: $0, cluster: config) }
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

    /// A request with this client's credentials: the token (or the exec plugin's), basic
    /// authentication, impersonation, and the exec plugin's client certificate as the request's
    /// TLS configuration. Returns the exec credential used, to drop it if the server refuses it.
    func request(_ pathAndQuery: String) async throws(KubeError) -> (HTTPClientRequest, ExecCredential?) {
        var r = HTTPClientRequest(url: base + pathAndQuery)
        r.headers.add(name: "Accept", value: "application/json")
        r.headers.add(name: "User-Agent", value: "balancer/\(BalancerVersion.string)")
        var credential: ExecCredential?
        if let exec {
            let c = try await exec.credential()
            credential = c
            if let cert = c.certificate, let key = c.key {
                var tls = baseTLS
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
                } catch {
                    throw KubeError("exec plugin \(config.exec?.command ?? ""): unusable client certificate or key: \(error)")
                }
                r.tlsConfiguration = tls
            }
        }
        if let t = credential?.token ?? bearer() {
            r.headers.add(name: "Authorization", value: "Bearer \(t)")
        } else if let basic = config.basicAuth {
            r.headers.add(name: "Authorization", value: "Basic " + Data("\(basic.username):\(basic.password)".utf8).base64EncodedString())
        }
        if let who = config.impersonation {
            if let user = who.user { r.headers.add(name: "Impersonate-User", value: user) }
            if let uid = who.uid { r.headers.add(name: "Impersonate-Uid", value: uid) }
            for g in who.groups { r.headers.add(name: "Impersonate-Group", value: g) }
            for (key, values) in who.extra.sorted(by: { $0.key < $1.key }) {
                let name = "Impersonate-Extra-" + (key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)
                for v in values { r.headers.add(name: name, value: v) }
            }
        }
        return (r, credential)
    }

    /// Sends the request for `pathAndQuery`; when the server refuses an exec plugin's
    /// credential (401), the plugin runs again and the request is sent once more, as kubectl does.
    func send(_ pathAndQuery: String, timeout: TimeAmount, what: String) async throws(KubeError) -> HTTPClientResponse {
        var retried = false
        while true {
            let (req, credential) = try await request(pathAndQuery)
            let response: HTTPClientResponse
            do {
                response = try await http.execute(req, timeout: timeout)
            } catch {
                throw KubeError("\(what): \(TransportErrors.text(error))")
            }
            if response.status == .unauthorized, let credential, let exec, !retried {
                await exec.refused(credential)
                retried = true
                continue
            }
            return response
        }
    }

    static func failure(_ what: String, _ response: HTTPClientResponse) async -> KubeError {
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { Array(buffer: $0) } ?? []
        let status = WireStatus.parse(body)
        let message = status?.message ?? String(decoding: body.prefix(300), as: UTF8.self)
        let hint = response.status.code == 401 ? " (the credentials were refused)"
            : response.status.code == 403 ? " (the ClusterRole must allow get, list and watch)" : ""
        let reason = status?.reason.map { " [\($0.prefix(60))]" } ?? ""
        return KubeError("\(what): \(response.status.code) \(response.status.reasonPhrase)\(hint): \(message)\(reason)", status: Int(response.status.code))
    }

    /// The whole body, refused as soon as it is larger than `cap` (by its Content-Length, before
    /// anything is read, or while reading).
    static func collect(_ response: HTTPClientResponse, cap: Int, what: String, limits: KubeLimits) async throws(KubeError) -> [UInt8] {
        func tooLarge(_ size: String) -> KubeError {
            KubeError("\(what): the response is \(size) bytes, more than the response cap of \(cap); "
                      + "raise --max-response-bytes (now \(cap)) if responses this large are expected", reason: .wire(.tooLarge))
        }
        if let length = response.headers.first(name: "Content-Length").flatMap({ Int($0) }), length > cap { throw tooLarge("\(length)") }
        var bytes: [UInt8] = []
        do {
            for try await chunk in response.body {
                guard bytes.count + chunk.readableBytes <= cap else { throw tooLarge("more than \(cap)") }
                bytes.append(contentsOf: chunk.readableBytesView)
            }
        } catch let e as KubeError {
            throw e
        } catch {
            throw KubeError("\(what): the response broke off: \(error)")
        }
        return bytes
    }

    /// Every object of `resource`, paged with limit/continue, and the version to watch from.
    /// Each page is checked against the resource (RawListPage.parse); a page that is not right
    /// fails the whole list, so a caller never sees part of a list or another kind's objects.
    public func list(_ resource: KubeResource, pageSize: Int? = nil) async throws(KubeError) -> (items: [RawListPage.Item], resourceVersion: String) {
        var items: [RawListPage.Item] = []
        var next: String?
        let what = "list \(resource.kind) (\(config.server)\(resource.path))"
        var limit = pageSize ?? limits.pageSize
        repeat {
            var query = "?limit=\(limit)" + resource.selectorQuery
            if let next { query += "&continue=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? next)" }
            let page: RawListPage
            let body: [UInt8]
            observe(resource.kind, "list")
            do {
                let response = try await send(resource.path + query, timeout: .seconds(60), what: what)
                guard response.status == .ok else { throw await Self.failure(what, response) }
                body = try await Self.collect(response, cap: limits.maxResponseBytes, what: what, limits: limits)
            } catch let e as KubeError {
                // The same page (the continue token stays valid) with half as many objects.
                if e.reason == .wire(.tooLarge), limit > 1 {
                    limit /= 2
                    continue
                }
                throw e
            } catch {
                throw KubeError("\(what): \(TransportErrors.text(error))")
            }
            do {
                page = try RawListPage.parse(body, expecting: resource.wire, maxObjectBytes: limits.maxObjectBytes)
            } catch {
                throw KubeError(what, error, limits: limits)
            }
            items += page.items
            // A list continues from the first page's snapshot; its version is the last page's.
            if page.continueToken == nil { return (items, page.resourceVersion) }
            next = page.continueToken
        } while true
    }

    /// Watches `resource` from `resourceVersion` with bookmarks, handing each event to `body`
    /// until it returns false, the server ends the stream (after `timeoutSeconds`), or it breaks.
    /// Every event is checked against the resource (an object of another kind, without its
    /// identity, or larger than the object cap ends the watch with an error).
    public func watch(_ resource: KubeResource, from resourceVersion: String, timeoutSeconds: Int = 300,
                      _ body: (WatchStream.Event) throws -> Bool) async throws {
        let query = "?watch=1&allowWatchBookmarks=true&resourceVersion=\(resourceVersion)&timeoutSeconds=\(timeoutSeconds)" + resource.selectorQuery
        let what = "watch \(resource.kind) (\(config.server)\(resource.path))"
        observe(resource.kind, "watch")
        let response = try await send(resource.path + query, timeout: .seconds(Int64(timeoutSeconds + 30)), what: what)
        guard response.status == .ok else { throw await Self.failure(what, response) }
        var stream = WatchStream(maxLineBytes: limits.maxEventBytes, expecting: resource.wire, maxObjectBytes: limits.maxObjectBytes)
        do {
            for try await chunk in response.body {
                if try !stream.feed(chunk.readableBytesView, each: body) { return }
            }
            try stream.finish()
        } catch let e as WatchStream.Failure {
            guard let problem = e.problem else { throw KubeError("\(what): \(e.description)", reason: .brokenStream) }
            throw KubeError(what, WireError(problem, e.description), limits: limits)
        } catch let e as KubeError {
            throw e
        } catch {
            throw KubeError("\(what): the stream broke: \(error)", reason: .brokenStream)
        }
    }
}
