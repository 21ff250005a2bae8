import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A credential an exec plugin printed: a bearer token, a client certificate and key, or both;
/// good until `expiry` (none: until the server refuses it).
public struct ExecCredential: Sendable, Equatable {
    public var token: String?
    public var certificate: [UInt8]?
    public var key: [UInt8]?
    public var expiry: Date?
    /// Tells two answers of the plugin apart (a 401 drops only the credential it was sent with).
    var serial: Int = 0
}

/// Runs a kubeconfig's exec plugin as kubectl does (the client.authentication.k8s.io protocol)
/// and keeps its answer until it expires or the server refuses it.
///
/// One run at a time: the kinds' reflectors start together and all wait for the first answer
/// rather than start one plugin each. The plugin's standard error is the agent's (its messages,
/// e.g. "token expired, run aws sso login", reach the log), as with kubectl.
public actor ExecCredentialSource {
    let config: ExecConfig
    /// KUBERNETES_EXEC_INFO's `spec.cluster`, when the kubeconfig asks to provide it.
    let clusterInfo: [String: Any]?
    private var cached: ExecCredential?
    private var running: Task<ExecCredential, any Error>?
    private var runs = 0
    /// A credential is renewed this long before its expiry, so a request never carries one that
    /// lapses on the way.
    static let margin: TimeInterval = 10
    /// A plugin that does not answer in this long is stopped (not when it is interactive: a
    /// person may be typing).
    static let timeout: TimeInterval = 120

    init(config: ExecConfig, cluster: KubeClientConfig) {
        self.config = config
        guard config.provideClusterInfo else {
            clusterInfo = nil
            return
        }
        var info: [String: Any] = ["server": cluster.server]
        if let name = cluster.tlsServerName { info["tls-server-name"] = name }
        if cluster.insecureSkipTLSVerify { info["insecure-skip-tls-verify"] = true }
        if let ca = cluster.certificateAuthority { info["certificate-authority-data"] = Data(ca).base64EncodedString() }
        if let proxy = cluster.proxyURL { info["proxy-url"] = proxy }
        clusterInfo = info
    }

    /// The cached credential while it is good, else the plugin's next answer.
    public func credential() async throws(KubeError) -> ExecCredential {
        if let c = cached, c.expiry.map({ $0.timeIntervalSinceNow > Self.margin }) ?? true { return c }
        let task: Task<ExecCredential, any Error>
        if let r = running {
            task = r
        } else {
            runs += 1
            let serial = runs
            let config = config, info = clusterInfo.map(JSONBox.init)
            task = Task.detached { try await Self.runOnThread(config, info?.value, serial: serial) }
            running = task
        }
        do {
            let c = try await task.value
            if running == task { running = nil }
            cached = c
            return c
        } catch {
            if running == task { running = nil }
            throw error as? KubeError ?? KubeError("exec plugin \(config.command): \(error)")
        }
    }

    /// The server refused `credential` (401): the next request runs the plugin again.
    public func refused(_ credential: ExecCredential) {
        if cached?.serial == credential.serial { cached = nil }
    }

    /// How many times the plugin ran (tests).
    public var runCount: Int { runs }

    /// `Any` is not Sendable; the dictionary is built here from strings and booleans only.
    private struct JSONBox: @unchecked Sendable {
        let value: [String: Any]
    }

    private static func runOnThread(_ config: ExecConfig, _ info: [String: Any]?, serial: Int) async throws -> ExecCredential {
        let box = JSONBox(value: info ?? [:])
        let hasInfo = info != nil
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try run(config, hasInfo ? box.value : nil, serial: serial) })
            }
        }
    }

    /// Runs the plugin once, blocking this thread, and reads its ExecCredential.
    static func run(_ config: ExecConfig, _ info: [String: Any]?, serial: Int) throws(KubeError) -> ExecCredential {
        let name = "exec plugin \(config.command)"
        let interactive: Bool
        switch config.interactiveMode {
        case .never: interactive = false
        case .ifAvailable: interactive = isatty(0) == 1
        case .always:
            guard isatty(0) == 1 else {
                throw KubeError("\(name) needs an interactive terminal (interactiveMode: Always), and balancer's standard input is not one; "
                                + "use a plugin setting that runs unattended")
            }
            interactive = true
        }
        guard let path = resolve(config.command, directory: config.directory) else {
            throw KubeError("\(name) was not found" + (config.command.contains("/") ? "" : " in PATH") + (config.installHint.map { ": \($0)" } ?? ""))
        }
        var spec: [String: Any] = ["interactive": interactive]
        if let info { spec["cluster"] = info }
        let execInfo: Data
        do {
            execInfo = try JSONSerialization.data(withJSONObject: ["apiVersion": config.apiVersion, "kind": "ExecCredential", "spec": spec], options: [.sortedKeys])
        } catch {
            throw KubeError("\(name): cannot write KUBERNETES_EXEC_INFO: \(error)")
        }
        var env = ProcessInfo.processInfo.environment
        for e in config.env { env[e.name] = e.value }
        env["KUBERNETES_EXEC_INFO"] = String(decoding: execInfo, as: UTF8.self)

        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = config.args
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardInput = interactive ? FileHandle.standardInput : FileHandle.nullDevice
        do { try p.run() } catch { throw KubeError("\(name) could not be started: \(error)") }
        let stopped = Mutex(false)
        if !interactive {
            let pid = p.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                stopped.withLock { s in
                    if p.isRunning { s = true; kill(pid, SIGKILL) }
                }
            }
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if stopped.withLock({ $0 }) { throw KubeError("\(name) gave no answer in \(Int(timeout)) s and was stopped") }
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            let how = p.terminationReason == .exit ? "exit status \(p.terminationStatus)" : "signal \(p.terminationStatus)"
            throw KubeError("\(name) failed (\(how); its messages are above)" + (config.installHint.map { ". \($0)" } ?? ""))
        }
        var credential = try parse(Array(output), apiVersion: config.apiVersion, name: name)
        credential.serial = serial
        return credential
    }

    /// The plugin's answer, checked as client-go checks it.
    static func parse(_ bytes: [UInt8], apiVersion: String, name: String) throws(KubeError) -> ExecCredential {
        struct Answer: Decodable {
            struct Status: Decodable {
                var token: String?
                var clientCertificateData: String?
                var clientKeyData: String?
                var expirationTimestamp: String?
            }
            var apiVersion: String?
            var kind: String?
            var status: Status?
        }
        let answer: Answer
        do { answer = try JSONDecoder().decode(Answer.self, from: Data(bytes)) } catch {
            throw KubeError("\(name) printed no ExecCredential JSON: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        guard answer.kind == "ExecCredential" else { throw KubeError("\(name) printed kind \(answer.kind ?? "(none)"), not ExecCredential") }
        guard answer.apiVersion == apiVersion else {
            throw KubeError("\(name) answered in \(answer.apiVersion ?? "(no apiVersion)"), and the kubeconfig asked for \(apiVersion)")
        }
        guard let status = answer.status else { throw KubeError("\(name) printed an ExecCredential without status") }
        let cert = status.clientCertificateData.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        let key = status.clientKeyData.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        guard (cert == nil) == (key == nil) else {
            throw KubeError("\(name) printed a client certificate without a key, or a key without a certificate")
        }
        let token = status.token.flatMap { $0.isEmpty ? nil : $0 }
        guard token != nil || cert != nil else { throw KubeError("\(name) printed neither a token nor a client certificate") }
        var expiry: Date?
        if let text = status.expirationTimestamp {
            guard let d = rfc3339(text) else { throw KubeError("\(name) printed expirationTimestamp \"\(text)\", which is not RFC 3339") }
            expiry = d
        }
        return ExecCredential(token: token, certificate: cert, key: key, expiry: expiry)
    }

    static func rfc3339(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)
    }

    /// A name with no `/` is looked up in PATH; a relative path is the kubeconfig directory's.
    static func resolve(_ command: String, directory: String) -> String? {
        if command.contains("/") {
            let path = command.hasPrefix("/") ? command : directory + "/" + command
            return access(path, X_OK) == 0 ? path : nil
        }
        let search = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in search.split(separator: ":") where !dir.isEmpty {
            let path = "\(dir)/\(command)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}
