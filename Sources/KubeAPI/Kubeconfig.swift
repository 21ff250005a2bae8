import Manifests
import FoundationEssentials

/// How to reach an API server: what a kubeconfig's current context or a pod's service account
/// says, resolved (files read relative to the kubeconfig that named them, `*-data` decoded).
/// The building block of the Kubernetes API source of `watch`.
public struct KubeClientConfig: Sendable, Equatable {
    /// `https://host:port`
    public var server: String
    /// PEM of the CA that signs the server's certificate; nil: the system's roots.
    public var certificateAuthority: [UInt8]?
    /// Only when the kubeconfig says `insecure-skip-tls-verify: true`, as a boolean.
    public var insecureSkipTLSVerify: Bool
    /// PEM client certificate and key (both or neither).
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
    /// A bearer token, or a file that holds one (re-read periodically: projected service-account
    /// tokens rotate).
    public var token: String?
    public var tokenFile: String?
    /// Where this came from, for messages: "kubeconfig /root/.kube/config, context kind-kind".
    public var origin: String
    /// The name the server's certificate is checked against (and sent as SNI) instead of the
    /// server URL's host.
    public var tlsServerName: String? = nil
    /// An HTTP (CONNECT) or SOCKS5 proxy, `http://[user:password@]host:port` or `socks5://host:port`.
    public var proxyURL: String? = nil
    public var exec: ExecConfig? = nil
    public var basicAuth: BasicAuth? = nil
    public var impersonation: Impersonation? = nil
    /// Fields of the kubeconfig read and not used (unknown keys), said by the caller at start.
    public var notes: [String] = []
}

public struct KubeconfigError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

public enum Kubeconfig {
    /// The files a `KUBECONFIG` value names (colon-separated, empty entries ignored), else
    /// `~/.kube/config`.
    public static func paths(environment: [String: String]) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        return [(environment["HOME"] ?? "/root") + "/.kube/config"]
    }

    /// The current context of the merged kubeconfig `paths`, or `context` when given. Merging
    /// follows kubectl: the first file that names a cluster, user or context (or sets
    /// current-context) wins; missing files in a list are skipped, but at least one must exist.
    public static func load(paths: [String], context wanted: String? = nil) throws(KubeconfigError) -> KubeClientConfig {
        typealias Entry = KubeconfigEntry
        var clusters: [String: Entry] = [:]
        var users: [String: Entry] = [:]
        var contexts: [String: Entry] = [:]
        var current: String?
        var read = 0
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            read += 1
            let tree: ManifestTree
            do { tree = try ManifestReader.parseYAML(Array(data), file: path) } catch {
                throw KubeconfigError("kubeconfig \(error)")
            }
            guard let root = tree.documents.first, tree.kind(root) == .mapping else { continue }
            let dir = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
            func collect(_ key: String, _ inner: String, into map: inout [String: Entry]) {
                guard let list = tree.value(root, key) else { return }
                for item in tree.items(list) {
                    guard let name = tree.value(item, "name").map({ tree.text($0) }), let body = tree.value(item, inner),
                          map[name] == nil else { continue }
                    map[name] = Entry(tree: tree, node: body, dir: dir)
                }
            }
            collect("clusters", "cluster", into: &clusters)
            collect("users", "user", into: &users)
            collect("contexts", "context", into: &contexts)
            if current == nil, let c = tree.value(root, "current-context"), !tree.isNull(c), !tree.text(c).isEmpty {
                current = tree.text(c)
            }
        }
        guard read > 0 else { throw KubeconfigError("no kubeconfig found (looked at \(paths.joined(separator: ", ")))") }
        guard let name = wanted ?? current else { throw KubeconfigError("the kubeconfig sets no current-context (give --context)") }
        guard let ctx = contexts[name] else {
            throw KubeconfigError("context \"\(name)\" is not in the kubeconfig (contexts: \(contexts.keys.sorted().joined(separator: ", ")))")
        }
        let clusterName = ctx.tree.value(ctx.node, "cluster").map { ctx.tree.text($0) } ?? ""
        let userName = ctx.tree.value(ctx.node, "user").map { ctx.tree.text($0) } ?? ""
        guard let cluster = clusters[clusterName] else {
            throw KubeconfigError("context \"\(name)\" names cluster \"\(clusterName)\", which is not in the kubeconfig")
        }
        let origin = "kubeconfig \(cluster.tree.file), context \(name)"
        func string(_ e: Entry, _ key: String) -> String? { e.string(key) }
        /// `key-data` (base64) or `key` (a file, relative to the kubeconfig's directory).
        func material(_ e: Entry, _ key: String) throws(KubeconfigError) -> [UInt8]? {
            if let b64 = string(e, key + "-data") {
                guard let d = Data(base64Encoded: b64, options: .ignoreUnknownCharacters) else {
                    throw KubeconfigError("\(origin): \(key)-data is not base64")
                }
                return Array(d)
            }
            guard let file = string(e, key) else { return nil }
            let path = e.path(file)
            guard let d = FileManager.default.contents(atPath: path) else { throw KubeconfigError("\(origin): cannot read \(key) \(path)") }
            return Array(d)
        }
        guard let server = string(cluster, "server") else { throw KubeconfigError("\(origin): cluster \"\(clusterName)\" has no server") }
        var config = KubeClientConfig(server: server, certificateAuthority: try material(cluster, "certificate-authority"),
                                      insecureSkipTLSVerify: false, origin: origin)
        // Only an explicit boolean true turns verification off (not "yes", not a string).
        config.insecureSkipTLSVerify = cluster.isTrue("insecure-skip-tls-verify")
        config.tlsServerName = string(cluster, "tls-server-name")
        if let proxy = string(cluster, "proxy-url") {
            _ = try ProxySetting.parse(proxy, origin: "\(origin): cluster \"\(clusterName)\"")
            config.proxyURL = proxy
        }
        for key in cluster.unknownKeys(KubeconfigEntry.clusterKeys) {
            config.notes.append("\(origin): cluster \"\(clusterName)\" has the field \"\(key)\", which balancer does not know; it is ignored")
        }
        for key in ctx.unknownKeys(KubeconfigEntry.contextKeys) {
            config.notes.append("\(origin): context \"\(name)\" has the field \"\(key)\", which balancer does not know; it is ignored")
        }
        if let user = users[userName] {
            try applyUser(user, name: userName, origin: origin, to: &config, material: material)
        } else if !userName.isEmpty {
            throw KubeconfigError("context \"\(name)\" names user \"\(userName)\", which is not in the kubeconfig")
        }
        return config
    }

    /// Inside a pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's token (a file,
    /// re-read as it rotates) and CA under `accountDirectory`.
    public static func inCluster(environment: [String: String],
                                 accountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount") throws(KubeconfigError) -> KubeClientConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeconfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let token = accountDirectory + "/token"
        guard FileManager.default.isReadableFile(atPath: token) else { throw KubeconfigError("no service-account token at \(token)") }
        guard let ca = FileManager.default.contents(atPath: accountDirectory + "/ca.crt") else {
            throw KubeconfigError("no service-account CA at \(accountDirectory)/ca.crt")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubeClientConfig(server: "https://\(hostPart):\(port)", certificateAuthority: Array(ca), insecureSkipTLSVerify: false,
                                tokenFile: token, origin: "in-cluster service account")
    }
}
