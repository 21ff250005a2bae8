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

    static func makePKI() throws -> PKI {
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
                                               SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
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
}
