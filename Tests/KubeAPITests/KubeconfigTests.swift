import Foundation
@testable import KubeAPI
import Manifests
import Testing

/// Kubeconfig and in-cluster resolution, as kubectl resolves them.
@Suite struct KubeconfigTests {
    func dir() throws -> String {
        let d = NSTemporaryDirectory() + "balancer-kubeconfig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d + "/certs", withIntermediateDirectories: true)
        return d
    }

    static let main = """
    apiVersion: v1
    kind: Config
    current-context: kind-kind
    clusters:
    - name: kind-kind
      cluster:
        server: https://127.0.0.1:6443
        certificate-authority-data: \(Data("CA PEM".utf8).base64EncodedString())
    - name: staging
      cluster:
        server: https://staging:6443
        certificate-authority: certs/ca.pem
        insecure-skip-tls-verify: "true"
    - name: lab
      cluster: {server: "https://lab:6443", insecure-skip-tls-verify: true}
    users:
    - name: kind-kind
      user:
        client-certificate-data: \(Data("CERT PEM".utf8).base64EncodedString())
        client-key-data: \(Data("KEY PEM".utf8).base64EncodedString())
    - name: robot
      user: {tokenFile: certs/token}
    - name: half
      user: {client-certificate: certs/cert.pem}
    contexts:
    - name: kind-kind
      context: {cluster: kind-kind, user: kind-kind}
    - name: staging
      context: {cluster: staging, user: robot}
    - name: lab
      context: {cluster: lab, user: robot}
    - name: broken
      context: {cluster: nowhere, user: robot}
    - name: half
      context: {cluster: kind-kind, user: half}
    """

    @Test func currentContextDataAndFiles() throws {
        let d = try dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try Self.main.write(toFile: d + "/config", atomically: true, encoding: .utf8)
        try "CA FILE".write(toFile: d + "/certs/ca.pem", atomically: true, encoding: .utf8)
        try "CERT FILE".write(toFile: d + "/certs/cert.pem", atomically: true, encoding: .utf8)

        let kind = try Kubeconfig.load(paths: [d + "/config"])
        #expect(kind.server == "https://127.0.0.1:6443")
        #expect(kind.certificateAuthority == Array("CA PEM".utf8))
        #expect(kind.clientCertificate == Array("CERT PEM".utf8) && kind.clientKey == Array("KEY PEM".utf8))
        #expect(!kind.insecureSkipTLSVerify && kind.token == nil)
        #expect(kind.origin == "kubeconfig \(d)/config, context kind-kind")

        // Files relative to the kubeconfig; a quoted "true" does not turn verification off.
        let staging = try Kubeconfig.load(paths: [d + "/config"], context: "staging")
        #expect(staging.certificateAuthority == Array("CA FILE".utf8))
        #expect(!staging.insecureSkipTLSVerify)
        #expect(staging.tokenFile == d + "/certs/token")
        #expect(try Kubeconfig.load(paths: [d + "/config"], context: "lab").insecureSkipTLSVerify)

        #expect(throws: KubeconfigError.self) { try Kubeconfig.load(paths: [d + "/config"], context: "nope") }
        #expect { try Kubeconfig.load(paths: [d + "/config"], context: "broken") } throws: {
            "\($0)".contains("names cluster \"nowhere\"")
        }
        #expect { try Kubeconfig.load(paths: [d + "/config"], context: "half") } throws: {
            "\($0)".contains("certificate without a key")
        }
    }

    @Test func kubeconfigListMergesFirstWins() throws {
        let d = try dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try """
        current-context: mine
        clusters: [{name: shared, cluster: {server: "https://first:6443"}}]
        users: [{name: me, user: {token: abc}}]
        contexts: [{name: mine, context: {cluster: shared, user: me}}]
        """.write(toFile: d + "/a", atomically: true, encoding: .utf8)
        try """
        current-context: theirs
        clusters: [{name: shared, cluster: {server: "https://second:6443"}}]
        contexts: [{name: theirs, context: {cluster: shared, user: me}}]
        """.write(toFile: d + "/b", atomically: true, encoding: .utf8)
        let paths = Kubeconfig.paths(environment: ["KUBECONFIG": "\(d)/missing::\(d)/a:\(d)/b", "HOME": "/nonexistent"])
        #expect(paths == ["\(d)/missing", "\(d)/a", "\(d)/b"])
        let c = try Kubeconfig.load(paths: paths)
        #expect(c.server == "https://first:6443")
        #expect(c.token == "abc")
        #expect(try Kubeconfig.load(paths: paths, context: "theirs").server == "https://first:6443")
        #expect(Kubeconfig.paths(environment: ["HOME": "/home/u"]) == ["/home/u/.kube/config"])
        #expect(throws: KubeconfigError.self) { try Kubeconfig.load(paths: ["\(d)/missing"]) }
    }

    @Test func inCluster() throws {
        let d = try dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try "tok".write(toFile: d + "/token", atomically: true, encoding: .utf8)
        try "CA".write(toFile: d + "/ca.crt", atomically: true, encoding: .utf8)
        let c = try Kubeconfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], accountDirectory: d)
        #expect(c.server == "https://[fd00::1]:443")
        #expect(c.tokenFile == d + "/token" && c.certificateAuthority == Array("CA".utf8))
        #expect(throws: KubeconfigError.self) { try Kubeconfig.inCluster(environment: [:], accountDirectory: d) }
    }

    /// One kubeconfig with one user per case, loaded with context `c`.
    func load(cluster: String = "{server: \"https://api:6443\"}", user: String) throws -> KubeClientConfig {
        let d = try dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try """
        current-context: c
        clusters: [{name: k, cluster: \(cluster)}]
        users: [{name: u, user: \(user)}]
        contexts: [{name: c, context: {cluster: k, user: u, namespace: default}}]
        """.write(toFile: d + "/config", atomically: true, encoding: .utf8)
        return try Kubeconfig.load(paths: [d + "/config"])
    }

    func refusal(cluster: String = "{server: \"https://api:6443\"}", user: String) -> String {
        do {
            _ = try load(cluster: cluster, user: user)
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    /// Exec plugins as kubectl reads them: v1 needs interactiveMode, v1beta1 defaults it to
    /// IfAvailable, v1alpha1 is gone; env and args kept in order; a relative command is the
    /// kubeconfig directory's.
    @Test func execPluginSettings() throws {
        let eks = try load(user: """
        {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token, --cluster-name, prod],
                env: [{name: AWS_PROFILE, value: ops}, {name: AWS_REGION, value: eu-west-1}], installHint: "install the AWS CLI",
                provideClusterInfo: true}}
        """)
        let exec = try #require(eks.exec)
        #expect(exec.command == "aws" && exec.args == ["eks", "get-token", "--cluster-name", "prod"])
        #expect(exec.env.map(\.name) == ["AWS_PROFILE", "AWS_REGION"] && exec.env.map(\.value) == ["ops", "eu-west-1"])
        #expect(exec.interactiveMode == .ifAvailable && exec.provideClusterInfo && exec.installHint == "install the AWS CLI")
        #expect(eks.notes.isEmpty, "\(eks.notes)")
        #expect(refusal(user: "{exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin}}")
                    .contains("exec interactiveMode must be set for client.authentication.k8s.io/v1"))
        #expect(refusal(user: "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: old}}")
                    .contains("v1alpha1 was removed in Kubernetes 1.24"))
        #expect(refusal(user: "{exec: {apiVersion: client.authentication.k8s.io/v1, interactiveMode: Sometimes, command: x}}")
                    .contains("interactiveMode \"Sometimes\" is not Never, IfAvailable or Always"))
        #expect(refusal(user: "{exec: {apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}}").contains("exec has no command"))
    }

    /// auth-provider was removed from kubectl 1.26: refused, naming the plugin that replaced it,
    /// never read as "no credentials" (which would end in a bare 401).
    @Test func authProviderIsRefusedInWords() {
        let gcp = refusal(user: "{auth-provider: {name: gcp, config: {cmd-path: gcloud}}}")
        #expect(gcp.contains("uses auth-provider \"gcp\", which kubectl removed in 1.26") && gcp.contains("gke-gcloud-auth-plugin"), "\(gcp)")
        #expect(refusal(user: "{auth-provider: {name: oidc}}").contains("kubelogin"))
    }

    /// Every other field: tls-server-name and proxy-url read; basic auth exclusive with a token;
    /// impersonation needs `as`; a field balancer does not know is named in a note (never
    /// ignored without a word), and a proxy it cannot use is refused at load.
    @Test func clusterAndUserFieldsAreReadOrNamed() throws {
        let c = try load(cluster: "{server: \"https://10.0.0.1:6443\", tls-server-name: api.internal, proxy-url: \"http://proxy:3128\", disable-compression: true}",
                         user: "{token: abc, as: admin, as-groups: [ops], future-field: 1}")
        #expect(c.tlsServerName == "api.internal" && c.proxyURL == "http://proxy:3128")
        #expect(c.impersonation == Impersonation(user: "admin", uid: nil, groups: ["ops"], extra: [:]))
        #expect(c.notes.count == 1 && c.notes[0].contains("user \"u\" has the field \"future-field\", which balancer does not know"), "\(c.notes)")
        #expect(refusal(user: "{token: abc, username: me, password: pw}").contains("both a token and a username/password"))
        #expect(refusal(user: "{as-groups: [ops]}").contains("without as"))
        #expect(refusal(cluster: "{server: \"https://api:6443\", proxy-url: \"https://proxy:3128\"}", user: "{token: a}")
                    .contains("cannot speak TLS to the proxy itself"))
        #expect(refusal(cluster: "{server: \"https://api:6443\", proxy-url: \"ftp://proxy\"}", user: "{token: a}")
                    .contains("proxy-url scheme \"ftp\" is not http or socks5"))
        let basic = try load(user: "{username: me, password: pw}")
        #expect(basic.basicAuth == BasicAuth(username: "me", password: "pw"))
    }

    /// The plugin's answer is checked as client-go checks it.
    @Test func execCredentialAnswers() throws {
        let v1 = "client.authentication.k8s.io/v1"
        func answer(_ json: String) -> String {
            do {
                let c = try ExecCredentialSource.parse(Array(json.utf8), apiVersion: v1, name: "p")
                return "token=\(c.token ?? "-") cert=\(c.certificate != nil) expiry=\(c.expiry.map { Int($0.timeIntervalSince1970) } ?? 0)"
            } catch {
                return error.description
            }
        }
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#)
                == "token=t cert=false expiry=1893456000")
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00.5+01:00"}}"#)
                == "token=t cert=false expiry=1893452400")
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"ExecCredential","status":{"clientCertificateData":"C"}}"#).contains("without a key"))
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"ExecCredential","status":{}}"#).contains("neither a token nor a client certificate"))
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"Status"}"#).contains("printed kind Status"))
        #expect(answer("not json").contains("printed no ExecCredential JSON"))
        #expect(answer(#"{"apiVersion":"\#(v1)","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"tomorrow"}}"#).contains("not RFC 3339"))
    }
}
