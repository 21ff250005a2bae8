import FoundationEssentials
import Manifests

/// A kubeconfig user's `exec` credential plugin (client.authentication.k8s.io, as kubectl runs
/// one: EKS's `aws eks get-token`, GKE's `gke-gcloud-auth-plugin`, AKS's and OIDC's `kubelogin`).
public struct ExecConfig: Sendable, Equatable {
    public enum InteractiveMode: String, Sendable, Equatable {
        case never = "Never"
        case ifAvailable = "IfAvailable"
        case always = "Always"
    }

    /// `client.authentication.k8s.io/v1` or `/v1beta1`: asked in KUBERNETES_EXEC_INFO, required
    /// back in the plugin's answer.
    public var apiVersion: String
    /// As written; resolved when run (a bare name through PATH, a relative path against the
    /// kubeconfig's directory).
    public var command: String
    public var args: [String]
    public var env: [(name: String, value: String)]
    public var installHint: String?
    public var provideClusterInfo: Bool
    public var interactiveMode: InteractiveMode
    /// The directory of the kubeconfig that named it.
    public var directory: String

    public static let versions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    public static func == (a: ExecConfig, b: ExecConfig) -> Bool {
        a.apiVersion == b.apiVersion && a.command == b.command && a.args == b.args && a.env.map(\.name) == b.env.map(\.name)
            && a.env.map(\.value) == b.env.map(\.value) && a.installHint == b.installHint && a.provideClusterInfo == b.provideClusterInfo
            && a.interactiveMode == b.interactiveMode && a.directory == b.directory
    }
}

/// `username`/`password` of a kubeconfig user (HTTP basic authentication).
public struct BasicAuth: Sendable, Equatable {
    public var username: String
    public var password: String
}

/// `as`, `as-uid`, `as-groups`, `as-user-extra`: requests made as another user (the API
/// server checks that the credentials may impersonate).
public struct Impersonation: Sendable, Equatable {
    public var user: String?
    public var uid: String?
    public var groups: [String]
    public var extra: [String: [String]]
}

/// The parts of a kubeconfig entry read as a tree, with the keys it may hold: a key not among
/// them is reported (`KubeClientConfig.notes`), never dropped without a word.
struct KubeconfigEntry {
    var tree: ManifestTree
    var node: NodeID
    var dir: String

    static let clusterKeys: Set<String> = ["server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
                                           "tls-server-name", "proxy-url", "disable-compression", "extensions"]
    static let userKeys: Set<String> = ["client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile",
                                        "as", "as-uid", "as-groups", "as-user-extra", "username", "password", "auth-provider", "exec", "extensions"]
    static let contextKeys: Set<String> = ["cluster", "user", "namespace", "extensions"]
    static let execKeys: Set<String> = ["apiVersion", "command", "args", "env", "installHint", "provideClusterInfo", "interactiveMode"]

    func string(_ key: String, in node: NodeID? = nil) -> String? {
        guard let n = tree.value(node ?? self.node, key), !tree.isNull(n), tree.kind(n) == .scalar else { return nil }
        let s = tree.text(n)
        return s.isEmpty ? nil : s
    }

    /// Only a plain `true` (not `"true"`, not `yes`): a switch that weakens security must be
    /// meant.
    func isTrue(_ key: String, in node: NodeID? = nil) -> Bool {
        guard let n = tree.value(node ?? self.node, key) else { return false }
        return tree.style(n) == .plain && tree.text(n) == "true"
    }

    func strings(_ key: String, in node: NodeID? = nil) -> [String] {
        guard let n = tree.value(node ?? self.node, key) else { return [] }
        return tree.items(n).map { tree.text($0) }
    }

    /// Keys of `node` (default: the entry) not in `known`, in document order.
    func unknownKeys(_ known: Set<String>, in node: NodeID? = nil) -> [String] {
        let entries = tree.entries(node ?? self.node)
        return (0..<entries.count).map { tree.text(entries[$0].key) }.filter { !known.contains($0) }
    }

    /// Relative paths are the kubeconfig's directory's, as kubectl resolves them.
    func path(_ p: String) -> String { p.hasPrefix("/") ? p : dir + "/" + p }
}

extension Kubeconfig {
    /// The user's way to authenticate: token, client certificate, basic, exec plugin; impersonation.
    /// kubectl's rules: token and basic exclude each other; auth-provider (removed in kubectl
    /// 1.26) is refused, naming what replaces it.
    static func applyUser(_ user: KubeconfigEntry, name: String, origin: String, to config: inout KubeClientConfig,
                          material: (KubeconfigEntry, String) throws(KubeconfigError) -> [UInt8]?) throws(KubeconfigError) {
        let what = "\(origin): user \"\(name)\""
        if let provider = user.tree.value(user.node, "auth-provider") {
            let kind = user.string("name", in: provider) ?? "?"
            let replacement = ["gcp": "gke-gcloud-auth-plugin", "azure": "kubelogin (Azure)", "oidc": "kubelogin (int128/kubelogin)"][kind]
            throw KubeconfigError("\(what) uses auth-provider \"\(kind)\", which kubectl removed in 1.26 and balancer does not run: "
                                  + "use an exec credential plugin" + (replacement.map { " (\($0))" } ?? "")
                                  + "; `kubectl config view --minify` shows the user")
        }
        config.clientCertificate = try material(user, "client-certificate")
        config.clientKey = try material(user, "client-key")
        if (config.clientCertificate == nil) != (config.clientKey == nil) {
            throw KubeconfigError("\(what) has a client certificate without a key, or a key without a certificate")
        }
        config.token = user.string("token")
        config.tokenFile = user.string("tokenFile").map(user.path)
        if let username = user.string("username") {
            guard config.token == nil && config.tokenFile == nil else {
                throw KubeconfigError("\(what) has both a token and a username/password; kubectl allows one of them")
            }
            config.basicAuth = BasicAuth(username: username, password: user.string("password") ?? "")
        } else if user.string("password") != nil {
            throw KubeconfigError("\(what) has a password without a username")
        }
        let groups = user.strings("as-groups")
        var extra: [String: [String]] = [:]
        if let e = user.tree.value(user.node, "as-user-extra") {
            let entries = user.tree.entries(e)
            for i in 0..<entries.count {
                extra[user.tree.text(entries[i].key)] = user.tree.items(entries[i].value).map { user.tree.text($0) }
            }
        }
        let impersonate = user.string("as")
        if impersonate != nil || user.string("as-uid") != nil || !groups.isEmpty || !extra.isEmpty {
            guard impersonate != nil else {
                throw KubeconfigError("\(what) sets as-uid, as-groups or as-user-extra without as (the user to impersonate)")
            }
            config.impersonation = Impersonation(user: impersonate, uid: user.string("as-uid"), groups: groups, extra: extra)
        }
        if let exec = user.tree.value(user.node, "exec") {
            config.exec = try execConfig(user, exec, what: what)
            for key in user.unknownKeys(KubeconfigEntry.execKeys, in: exec) {
                config.notes.append("\(what): exec has the field \"\(key)\", which balancer does not know; it is ignored")
            }
        }
        for key in user.unknownKeys(KubeconfigEntry.userKeys) {
            config.notes.append("\(what) has the field \"\(key)\", which balancer does not know; it is ignored")
        }
    }

    static func execConfig(_ user: KubeconfigEntry, _ node: NodeID, what: String) throws(KubeconfigError) -> ExecConfig {
        guard let command = user.string("command", in: node) else { throw KubeconfigError("\(what): exec has no command") }
        guard let apiVersion = user.string("apiVersion", in: node) else {
            throw KubeconfigError("\(what): exec has no apiVersion (client.authentication.k8s.io/v1 or v1beta1)")
        }
        guard ExecConfig.versions.contains(apiVersion) else {
            throw KubeconfigError("\(what): exec apiVersion \(apiVersion) is not one balancer speaks (\(ExecConfig.versions.joined(separator: ", ")))"
                                  + (apiVersion.hasSuffix("/v1alpha1") ? "; v1alpha1 was removed in Kubernetes 1.24" : ""))
        }
        var mode = ExecConfig.InteractiveMode.ifAvailable
        if let text = user.string("interactiveMode", in: node) {
            guard let m = ExecConfig.InteractiveMode(rawValue: text) else {
                throw KubeconfigError("\(what): exec interactiveMode \"\(text)\" is not Never, IfAvailable or Always")
            }
            mode = m
        } else if apiVersion.hasSuffix("/v1") {
            throw KubeconfigError("\(what): exec interactiveMode must be set for \(apiVersion) (Never, IfAvailable or Always)")
        }
        var env: [(name: String, value: String)] = []
        if let list = user.tree.value(node, "env") {
            for item in user.tree.items(list) {
                guard let name = user.string("name", in: item) else { throw KubeconfigError("\(what): an exec env entry has no name") }
                env.append((name, user.string("value", in: item) ?? ""))
            }
        }
        return ExecConfig(apiVersion: apiVersion, command: command, args: user.strings("args", in: node), env: env,
                          installHint: user.string("installHint", in: node), provideClusterInfo: user.isTrue("provideClusterInfo", in: node),
                          interactiveMode: mode, directory: user.dir)
    }
}
