import FoundationEssentials
import HostSystem
import SystemPackage

/// A user name and password for a registry (basic authentication, and the token request).
public struct RegistryCredentials: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var basicHeader: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// The docker `config.json` conventions, as docker, podman, oras and crane read them: `auths`
/// keyed by registry host (also written as `https://host`, `http://host/v1/` and so on), each
/// with `auth` (base64 of `user:password`) or `username` and `password`.
/// Credential helpers (`credsStore`, `credHelpers`) run external programs and are not supported:
/// a host they would serve is refused with a message rather than silently tried anonymously.
public struct DockerConfig: Sendable {
    /// Where the file was read, for messages; nil when there was none.
    public var path: String?
    var auths: [String: JSONValue]
    var credsStore: String?
    var credHelpers: [String: String]

    public init(path: String?, auths: [String: JSONValue] = [:], credsStore: String? = nil, credHelpers: [String: String] = [:]) {
        self.path = path
        self.auths = auths
        self.credsStore = credsStore
        self.credHelpers = credHelpers
    }

    /// The file to read: `explicit` (--registry-config), else `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    public static func defaultPath(explicit: String?, environment: [String: String]) -> String? {
        if let explicit { return explicit }
        if let dir = environment["DOCKER_CONFIG"], !dir.isEmpty { return dir + "/config.json" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.docker/config.json" }
        return nil
    }

    /// Reads the configuration. A missing default file means no credentials; a missing
    /// `--registry-config` file, or one that is not JSON, is an error.
    public static func load(explicit: String?, environment: [String: String]) throws(RegistryError) -> DockerConfig {
        guard let path = defaultPath(explicit: explicit, environment: environment) else { return DockerConfig(path: nil) }
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path)
        } catch {
            if explicit == nil, error.errno == .noSuchFileOrDirectory { return DockerConfig(path: nil) }
            throw RegistryError(path, step: "read registry configuration", "\(error)")
        }
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws(RegistryError) -> DockerConfig {
        guard let json = JSONValue.parse(bytes), json.object != nil else {
            throw RegistryError(path, step: "read registry configuration", "not a JSON object")
        }
        var helpers: [String: String] = [:]
        for (k, v) in json["credHelpers"]?.object ?? [:] { if let s = v.string { helpers[k] = s } }
        return DockerConfig(path: path, auths: json["auths"]?.object ?? [:], credsStore: json["credsStore"]?.string, credHelpers: helpers)
    }

    /// `https://host/v1/`, `http://host`, `host/` → `host`: the forms docker login has written.
    static func normalize(_ key: String) -> String {
        var k = Substring(key)
        for scheme in ["https://", "http://"] where k.hasPrefix(scheme) { k = k.dropFirst(scheme.count) }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        return String(k)
    }

    /// The credentials for `host`, nil for anonymous access. Throws when the entry is unreadable or
    /// only a credential helper could answer for it.
    public func credentials(for host: String) throws(RegistryError) -> RegistryCredentials? {
        let source = path ?? "registry configuration"
        if let helper = credHelpers[host] {
            throw RegistryError(source, step: "credentials for \(host)",
                                "credHelpers names docker-credential-\(helper) for this registry; credential helpers are not supported: put an \"auths\" entry with \"auth\" in a file for --registry-config")
        }
        // An exact key first, then any key that normalizes to the host.
        let entry = auths[host] ?? auths.first(where: { Self.normalize($0.key) == host })?.value
        if let entry {
            if let auth = entry["auth"]?.string, !auth.isEmpty {
                guard let data = Data(base64Encoded: auth), let text = String(data: data, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    throw RegistryError(source, step: "credentials for \(host)", "auths entry's \"auth\" is not base64 of user:password")
                }
                return RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
            if let user = entry["username"]?.string, let password = entry["password"]?.string {
                return RegistryCredentials(username: user, password: password)
            }
            if entry["identitytoken"]?.string != nil {
                throw RegistryError(source, step: "credentials for \(host)", "auths entry holds only an identitytoken (OAuth refresh token), which is not supported: use \"auth\"")
            }
        }
        if let store = credsStore {
            throw RegistryError(source, step: "credentials for \(host)",
                                "no \"auth\" for this registry and credsStore names docker-credential-\(store); credential helpers are not supported: put an \"auths\" entry with \"auth\" in a file for --registry-config")
        }
        return nil
    }
}
