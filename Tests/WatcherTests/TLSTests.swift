import Crypto
import Foundation
@testable import KubeAPI
import Manifests
import NIOSSL
import SwiftASN1
import Testing
@testable import Watcher
import X509

/// The client's TLS: the cluster's CA from the kubeconfig, client-certificate authentication,
/// bearer tokens over HTTPS, and what fails without them.
@Suite(.serialized) struct TLSTests {
    struct PKI {
        var caPEM: String
        var serverPEM: String, serverKeyPEM: String
        var clientPEM: String, clientKeyPEM: String
        var otherCAPEM: String
    }

    /// `serverName`: the server certificate names only this DNS name (not 127.0.0.1).
    static func makePKI(serverName: String? = nil) throws -> PKI {
        let now = Date()
        func ca(_ name: String) throws -> (Certificate, P256.Signing.PrivateKey) {
            let key = P256.Signing.PrivateKey()
            let dn = try DistinguishedName { CommonName(name) }
            let cert = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                                       notValidBefore: now - 60, notValidAfter: now + 3600, issuer: dn, subject: dn,
                                       signatureAlgorithm: .ecdsaWithSHA256,
                                       extensions: try Certificate.Extensions {
                                           Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                                           KeyUsage(keyCertSign: true)
                                       },
                                       issuerPrivateKey: .init(key))
            return (cert, key)
        }
        let (caCert, caKey) = try ca("balancer test CA")
        let (otherCA, _) = try ca("some other CA")
        func leaf(_ name: String, server: Bool) throws -> (String, String) {
            let key = P256.Signing.PrivateKey()
            let cert = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                                       notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caCert.subject,
                                       subject: try DistinguishedName { CommonName(name) },
                                       signatureAlgorithm: .ecdsaWithSHA256,
                                       extensions: try Certificate.Extensions {
                                           Critical(BasicConstraints.notCertificateAuthority)
                                           if server {
                                               if let serverName {
                                                   SubjectAlternativeNames([.dnsName(serverName)])
                                               } else {
                                                   SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                                               }
                                               try ExtendedKeyUsage([.serverAuth])
                                           } else {
                                               try ExtendedKeyUsage([.clientAuth])
                                           }
                                       },
                                       issuerPrivateKey: .init(caKey))
            return (try cert.serializeAsPEM().pemString, key.pemRepresentation)
        }
        let (s, sk) = try leaf("127.0.0.1", server: true)
        let (c, ck) = try leaf("balancer", server: false)
        return PKI(caPEM: try caCert.serializeAsPEM().pemString, serverPEM: s, serverKeyPEM: sk, clientPEM: c, clientKeyPEM: ck,
                   otherCAPEM: try otherCA.serializeAsPEM().pemString)
    }

    func server(_ pki: PKI, requireClientCertificate: Bool) throws -> APIServerDouble {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(pki.serverPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem)))
        if requireClientCertificate {
            tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pki.caPEM.utf8), format: .pem)])
            tls.certificateVerification = .noHostnameVerification
        }
        let api = try APIServerDouble(tls: tls)
        api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                #"{"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.96.0.5","ports":[{"port":80}]}}"#)
        return api
    }

    func list(_ config: KubeClientConfig) async -> String {
        do {
            let client = try KubeClient(config: config)
            defer { Task { await client.shutdown() } }
            let r = try await client.list(.services)
            return "ok \(r.items.count)"
        } catch {
            return "error \(error)"
        }
    }

    @Test func clientCertificateAndCA() async throws {
        let pki = try Self.makePKI()
        let api = try server(pki, requireClientCertificate: true)
        defer { api.stop() }
        let url = "https://127.0.0.1:\(api.port)"
        let full = KubeClientConfig(server: url, certificateAuthority: Array(pki.caPEM.utf8), insecureSkipTLSVerify: false,
                                    clientCertificate: Array(pki.clientPEM.utf8), clientKey: Array(pki.clientKeyPEM.utf8), origin: "test")
        #expect(await list(full) == "ok 1")
        // Without the client certificate the server refuses the handshake.
        var noCert = full
        noCert.clientCertificate = nil
        noCert.clientKey = nil
        #expect(await list(noCert).hasPrefix("error"))
        // A CA that did not sign the server's certificate: refused by the client.
        var wrongCA = full
        wrongCA.certificateAuthority = Array(pki.otherCAPEM.utf8)
        #expect(await list(wrongCA).hasPrefix("error"))
        // Verification off only when asked: then the wrong CA does not matter.
        wrongCA.insecureSkipTLSVerify = true
        #expect(await list(wrongCA) == "ok 1")
    }

    @Test func bearerTokenOverHTTPS() async throws {
        let pki = try Self.makePKI()
        let api = try server(pki, requireClientCertificate: false)
        defer { api.stop() }
        let base = KubeClientConfig(server: "https://127.0.0.1:\(api.port)", certificateAuthority: Array(pki.caPEM.utf8),
                                    insecureSkipTLSVerify: false, origin: "test")
        var good = base
        good.token = "good"
        #expect(await list(good) == "ok 1")
        #expect(await list(base).contains("401 Unauthorized"))
        // A token file (as a projected service-account token) is read.
        let file = NSTemporaryDirectory() + "balancer-token-\(UUID().uuidString)"
        try "good\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        var fromFile = base
        fromFile.tokenFile = file
        #expect(await list(fromFile) == "ok 1")
    }

    /// tls-server-name: the server's certificate names api.internal, not the address connected
    /// to; without the setting the client refuses it, with it the name is checked (and sent as
    /// SNI) while the connection goes to 127.0.0.1, as kubectl does.
    @Test func tlsServerNameChecksTheCertificateAgainstThatName() async throws {
        let pki = try Self.makePKI(serverName: "api.internal")
        let api = try server(pki, requireClientCertificate: false)
        defer { api.stop() }
        var config = KubeClientConfig(server: "https://127.0.0.1:\(api.port)", certificateAuthority: Array(pki.caPEM.utf8),
                                      insecureSkipTLSVerify: false, token: "good", origin: "test")
        let refused = await list(config)
        #expect(refused.contains("failedToValidateHostname"), "\(refused)")
        config.tlsServerName = "api.internal"
        #expect(await list(config) == "ok 1")
    }

    /// An exec plugin may answer with a client certificate instead of a token (as some
    /// enterprise plugins do): the client presents it, and the server requiring one accepts.
    @Test func anExecPluginsClientCertificateIsPresented() async throws {
        let pki = try Self.makePKI()
        let api = try server(pki, requireClientCertificate: true)
        defer { api.stop() }
        let dir = NSTemporaryDirectory() + "balancer-exec-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let answer = try JSONSerialization.data(withJSONObject: [
            "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": ["clientCertificateData": pki.clientPEM, "clientKeyData": pki.clientKeyPEM],
        ])
        try answer.write(to: URL(fileURLWithPath: dir + "/answer.json"))
        try "#!/bin/sh\ncat \"$(dirname \"$0\")/answer.json\"\n".write(toFile: dir + "/plugin.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/plugin.sh", 0o755)
        var config = KubeClientConfig(server: "https://127.0.0.1:\(api.port)", certificateAuthority: Array(pki.caPEM.utf8),
                                      insecureSkipTLSVerify: false, origin: "test")
        #expect(await list(config).hasPrefix("error"), "no certificate: the handshake is refused")
        config.exec = ExecConfig(apiVersion: "client.authentication.k8s.io/v1", command: dir + "/plugin.sh", args: [], env: [],
                                 installHint: nil, provideClusterInfo: false, interactiveMode: .never, directory: dir)
        #expect(await list(config) == "ok 1")
    }

    /// proxy-url: requests go through an HTTP CONNECT proxy (a small Python one here, which
    /// records each tunnel it opens); TLS to the API server runs inside the tunnel.
    @Test func proxyURLTunnelsThroughTheProxy() async throws {
        let pki = try Self.makePKI()
        let api = try server(pki, requireClientCertificate: false)
        defer { api.stop() }
        let log = NSTemporaryDirectory() + "balancer-proxy-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = #filePath.replacingOccurrences(of: "TLSTests.swift", with: "connect_proxy.py")
        let portFile = log + ".port"
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        proxy.arguments = [script, log, portFile]
        try proxy.run()
        // SIGKILL, by its id: a child of this process may start with SIGTERM blocked.
        defer { kill(proxy.processIdentifier, SIGKILL) }
        var port: Int?
        for _ in 0..<100 where port == nil {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let proxyPort = try #require(port, "the proxy did not start")
        var config = KubeClientConfig(server: "https://127.0.0.1:\(api.port)", certificateAuthority: Array(pki.caPEM.utf8),
                                      insecureSkipTLSVerify: false, token: "good", origin: "test")
        config.proxyURL = "http://127.0.0.1:\(proxyPort)"
        #expect(await list(config) == "ok 1")
        let tunnels = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(tunnels.contains("CONNECT 127.0.0.1:\(api.port)"), "\(tunnels)")
        // An https:// proxy is refused in words rather than bypassed.
        config.proxyURL = "https://127.0.0.1:\(proxyPort)"
        #expect(await list(config).contains("cannot speak TLS to the proxy itself"))
    }
}
