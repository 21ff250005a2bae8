import Foundation
import Registry
import Testing

@Suite struct ReferenceTests {
    @Test func registryForms() throws {
        #expect(try RegistryReference.parse("127.0.0.1:5000/maps/cluster:v1")
            == RegistryReference(host: "127.0.0.1:5000", repository: "maps/cluster", tag: "v1"))
        #expect(try RegistryReference.parse("registry.example/a/b/c")
            == RegistryReference(host: "registry.example", repository: "a/b/c"))
        let d = "sha256:" + String(repeating: "ab", count: 32)
        let r = try RegistryReference.parse("localhost:5000/maps@\(d)")
        #expect(r == RegistryReference(host: "localhost:5000", repository: "maps", digest: d))
        #expect(r.reference == d)
        let both = try RegistryReference.parse("h/x:t@\(d)")
        #expect(both.tag == "t" && both.reference == d)
        #expect(both.description == "h/x:t@\(d)")
    }

    @Test func registryRefusals() {
        for bad in ["maps", "h/Upper", "h/a//b", "h/a-", "h/x:-bad", "h/x@sha256:abc", "h/x@md5:" + String(repeating: "0", count: 32), "/x", "h/a..b", "h/x:" + String(repeating: "t", count: 129)] {
            #expect(throws: RegistryError.self, "\(bad)") { try RegistryReference.parse(bad) }
        }
        #expect(RegistryReference.isValidRepository("a__b/c-d--e/f.g"))
        #expect(!RegistryReference.isValidRepository("a___b"))
    }

    @Test func layoutForms() throws {
        #expect(try ArtifactReference.parse("oci:/tmp/dir:v1") == .layout(LayoutReference(directory: "/tmp/dir", tag: "v1")))
        #expect(try ArtifactReference.parse("oci:rel/dir") == .layout(LayoutReference(directory: "rel/dir")))
        // A colon inside a directory name is kept when the text after the last colon is a path.
        #expect(try ArtifactReference.parse("oci:/a:b/dir:t") == .layout(LayoutReference(directory: "/a:b/dir", tag: "t")))
        #expect(throws: RegistryError.self) { try ArtifactReference.parse("oci::tag") }
        #expect(try ArtifactReference.parse("127.0.0.1:1/x:y") == .registry(RegistryReference(host: "127.0.0.1:1", repository: "x", tag: "y")))
    }
}

@Suite struct ManifestTests {
    let image: [UInt8] = Array("a map image".utf8)

    @Test func imageManifestBytesAreFixed() {
        let m = ArtifactManifest.image(image, title: "x.image")
        let expected = #"{"artifactType":"application/vnd.balancer.image.v1","config":{"data":"e30=","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.oci.empty.v1+json","size":2},"layers":[{"annotations":{"org.opencontainers.image.title":"x.image"},"digest":"\#(sha256Digest(image))","mediaType":"application/vnd.balancer.image.v1","size":11}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#
        #expect(String(decoding: m.bytes, as: UTF8.self) == expected)
        // Same bytes, same digest, every time.
        #expect(ArtifactManifest.image(image, title: "x.image").descriptor.digest == m.descriptor.digest)
        #expect(sha256Digest(Descriptor.emptyConfigBytes) == Descriptor.emptyConfig.digest)
    }

    @Test func roundTripAndRefusals() throws {
        let m = ArtifactManifest.image(image, title: "x.image")
        let back = try ArtifactManifest.parse(m.bytes, expecting: MediaType.image, where: "test")
        #expect(back == m)
        #expect(throws: RegistryError.self) { try ArtifactManifest.parse(m.bytes, expecting: MediaType.signature, where: "test") }
        let sig = ArtifactManifest.signature(Array("c2ln".utf8), title: "x.image.sig", subject: m.descriptor)
        let sigBack = try ArtifactManifest.parse(sig.bytes, expecting: MediaType.signature, where: "test")
        #expect(sigBack.subject?.digest == m.descriptor.digest)
        #expect(Digest.signatureTag(of: m.descriptor.digest) == "sha256-" + m.descriptor.digest.dropFirst(7) + ".sig")
        let container = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},"layers":[]}"#.utf8)
        #expect(throws: RegistryError.self) { try ArtifactManifest.parse(container, expecting: MediaType.image, where: "test") }
    }

    @Test func canonicalJSONEscapes() {
        let v = JSONValue.object(["b": .string("q\"\\\n\u{1}/é"), "a": .array([.integer(-1), .bool(true), .null])])
        #expect(String(decoding: v.canonicalBytes, as: UTF8.self) == #"{"a":[-1,true,null],"b":"q\"\\\n\u0001/é"}"#)
        #expect(JSONValue.parse(v.canonicalBytes) == v)
    }
}

@Suite struct DockerConfigTests {
    func config(_ text: String) throws -> DockerConfig { try DockerConfig.parse(Array(text.utf8), path: "config.json") }
    let auth = Data("user:pa:ss".utf8).base64EncodedString()

    @Test func lookup() throws {
        let c = try config(#"{"auths":{"https://reg.example/v1/":{"auth":"\#(auth)"},"127.0.0.1:5000":{"username":"u","password":"p"}}}"#)
        #expect(try c.credentials(for: "reg.example") == RegistryCredentials(username: "user", password: "pa:ss"))
        #expect(try c.credentials(for: "127.0.0.1:5000") == RegistryCredentials(username: "u", password: "p"))
        #expect(try c.credentials(for: "other.example") == nil)
        #expect(RegistryCredentials(username: "a", password: "b").basicHeader == "Basic YTpi")
    }

    @Test func helpersAreRefusedNotIgnored() throws {
        let c = try config(#"{"auths":{"a.example":{"auth":"\#(auth)"}},"credsStore":"desktop","credHelpers":{"b.example":"ecr-login"}}"#)
        #expect(try c.credentials(for: "a.example")?.username == "user")
        #expect(throws: RegistryError.self) { try c.credentials(for: "b.example") }
        #expect(throws: RegistryError.self) { try c.credentials(for: "c.example") }
        #expect(throws: RegistryError.self) { try config(#"{"auths":{"x":{"auth":"!!"}}}"#).credentials(for: "x") }
        #expect(throws: RegistryError.self) { try config("[]") }
    }

    @Test func paths() {
        #expect(DockerConfig.defaultPath(explicit: "/e.json", environment: ["DOCKER_CONFIG": "/d"]) == "/e.json")
        #expect(DockerConfig.defaultPath(explicit: nil, environment: ["DOCKER_CONFIG": "/d", "HOME": "/h"]) == "/d/config.json")
        #expect(DockerConfig.defaultPath(explicit: nil, environment: ["HOME": "/h"]) == "/h/.docker/config.json")
    }

    @Test func missingFiles() throws {
        // No default file: anonymous. A --registry-config that is missing: an error naming it.
        let none = try DockerConfig.load(explicit: nil, environment: ["DOCKER_CONFIG": "/nonexistent-balancer-test"])
        #expect(none.path == nil)
        #expect(try none.credentials(for: "x.example") == nil)
        do {
            _ = try DockerConfig.load(explicit: "/nonexistent-balancer-test/config.json", environment: [:])
            Issue.record("a missing --registry-config was accepted")
        } catch {
            #expect(error.source == "/nonexistent-balancer-test/config.json")
        }
    }

    @Test func challenges() {
        let c = Challenge.parse(#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        #expect(c?.scheme == "Bearer")
        #expect(c?.parameters == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"])
        #expect(Challenge.parse(#"Basic realm="Registry Realm""#)?.parameters["realm"] == "Registry Realm")
    }
}

/// Push and pull through an OCI layout directory: no registry needed.
@Suite struct LayoutTransferTests {
    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("balancer-layout-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func roundTripWithSignatureAndForeignEntries() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = LayoutStore(directory: dir + "/layout")
        let image: [UInt8] = Array(repeating: 7, count: 1000)
        let signature = Array("c2lnbmF0dXJl\n".utf8)
        let pushed = try await Transfer.push(image: image, title: "x.image", signature: signature, signatureTitle: "x.image.sig", to: store, tag: "v1")
        #expect(pushed.manifestDigest == ArtifactManifest.image(image, title: "x.image").descriptor.digest)
        #expect(pushed.signatureTag == Digest.signatureTag(of: pushed.manifestDigest))
        // Another tool's entry in index.json survives a second push.
        let indexPath = dir + "/layout/index.json"
        var index = try #require(JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: indexPath)))))
        if case .object(var o) = index, case .array(var m) = o["manifests"] {
            m.append(.object(["mediaType": .string(MediaType.manifest), "digest": .string("sha256:" + String(repeating: "0", count: 64)),
                              "size": .integer(1), "platform": .object(["os": .string("linux")])]))
            o["manifests"] = .array(m)
            index = .object(o)
        }
        try Data(index.canonicalBytes).write(to: URL(fileURLWithPath: indexPath))
        let again = try await Transfer.push(image: image, title: "x.image", signature: nil, signatureTitle: "", to: store, tag: "v1")
        #expect(again.manifestDigest == pushed.manifestDigest)
        #expect(again.blobsUploaded == 0)
        let after = try #require(JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: indexPath)))))
        let entries = after["manifests"]?.array ?? []
        #expect(entries.count == 3)  // v1 (replaced, not doubled), the .sig tag, the foreign entry
        #expect(entries.contains { $0["platform"]?["os"]?.string == "linux" })

        let pulled = try await Transfer.pull(from: store, reference: "v1")
        #expect(pulled.image == image)
        #expect(pulled.signature == signature)
        #expect(pulled.title == "x.image")
        let byDigest = try await Transfer.pull(from: store, reference: pushed.manifestDigest)
        #expect(byDigest.image == image)
    }

    @Test func corruptedBlobAndMissingTagRefused() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = LayoutStore(directory: dir)
        let image: [UInt8] = Array(0..<200)
        _ = try await Transfer.push(image: image, title: "x.image", signature: nil, signatureTitle: "", to: store, tag: "v1")
        await #expect(throws: RegistryError.self) { _ = try await Transfer.pull(from: store, reference: "v2") }
        let layer = ArtifactManifest.image(image, title: "x.image").layer.digest.dropFirst(7)
        var bytes = image
        bytes[10] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/blobs/sha256/\(layer)"))
        do {
            _ = try await Transfer.pull(from: store, reference: "v1")
            Issue.record("a corrupted layer was pulled")
        } catch {
            #expect(error.step.hasPrefix("get image layer"))
            #expect(error.description.contains("hash to"))
        }
    }
}
