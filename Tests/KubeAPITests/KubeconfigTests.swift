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
}
