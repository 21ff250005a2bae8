import CBalancerABI
import Crypto
import MapImage
import Testing

/// A small image built by hand: two services' worth of records touching every table.
func sampleContents() -> ImageContents {
    let v4 = IPAddress("10.96.0.10")!
    let nodeA: UInt32 = 0x1111_0001, nodeB: UInt32 = 0x2222_0002
    let zone: UInt32 = 0x0000_0777
    let group: UInt32 = 0xABCD_0001, group6: UInt32 = 0xABCD_0002
    let b1 = Backend(id: 0x0100_0001, address: SocketAddress("10.244.1.2:53")!, proto: .udp, nodeID: nodeA)
    let b2 = Backend(id: 0x0200_0001, address: SocketAddress("10.244.2.3:53")!, proto: .udp, nodeID: nodeB)
    let b3 = Backend(id: 0x0300_0001, address: SocketAddress("[fd00:10:244::5]:53")!, proto: .udp, nodeID: 0)
    let rule = Rule(groupID: group, ownerID: 77, affinityTimeout: 10800, origin: .service, kind: .clusterIP, action: .translate,
                    flags: [.topology, .affinity], nodePort: 30053)
    var meta = ImageMetadata()
    meta.nodes = [NodeInfo(id: nodeA, name: "node-a", zone: "z1", addresses: ["172.18.0.2"], object: true),
                  NodeInfo(id: nodeB, name: "node-b", zone: nil, addresses: ["172.18.0.3"], object: true)]
    meta.zones = [ZoneInfo(id: zone, name: "z1")]
    meta.services = [ServiceInfo(id: 77, namespace: "kube-system", name: "kube-dns", type: "ClusterIP", internalTrafficPolicy: "Cluster",
                                 externalTrafficPolicy: "Cluster", affinityTimeout: 10800)]
    meta.groups = [GroupInfo(id: group, owner: 77, ownerName: "kube-system/kube-dns", portName: "dns", port: 53, proto: "UDP", family: "IPv4", nodePort: 30053),
                   GroupInfo(id: group6, owner: 77, ownerName: "kube-system/kube-dns", portName: "dns", port: 53, proto: "UDP", family: "IPv6", nodePort: nil)]
    return ImageContents(
        frontends: [
            Frontend(key: FrontendKey(address: v4, port: 53, proto: .udp), id: 5, rules: [rule]),
            Frontend(key: FrontendKey(address: .wildcard(.ipv4), port: 30053, proto: .udp), id: 6,
                     rules: [Rule(groupID: group, ownerID: 77, origin: .service, kind: .nodePort, action: .translate, flags: [], nodePort: 30053)]),
            Frontend(key: FrontendKey(address: IPAddress("fd00:10:96::a")!, port: 53, proto: .udp), id: 7,
                     rules: [Rule(groupID: group6, ownerID: 77, origin: .service, kind: .clusterIP, action: .translate, flags: [])]),
        ],
        vips: [VIP(address: v4, serviceID: 77, flags: .rejectUnknownPort)],
        nodeAddresses: [NodeAddress(address: IPAddress("172.18.0.2")!, nodeID: nodeA), NodeAddress(address: IPAddress("172.18.0.3")!, nodeID: nodeB)],
        nodes: [ImageNode(id: nodeA, zoneID: zone, flags: .fromObject, ipv4: IPAddress("172.18.0.2"), ipv6: nil),
                ImageNode(id: nodeB, zoneID: 0, flags: .fromObject, ipv4: IPAddress("172.18.0.3"), ipv6: IPAddress("fd00::3"))],
        sets: [BackendSet(key: SetKey(groupID: group, scope: .cluster, scopeID: 0), flags: [], backends: [b1.id, b2.id]),
               BackendSet(key: SetKey(groupID: group, scope: .zone, scopeID: zone), flags: [], backends: [b1.id]),
               BackendSet(key: SetKey(groupID: group6, scope: .cluster, scopeID: 0), flags: .terminating, backends: [b3.id])],
        backends: [b1, b2, b3],
        metadata: meta)
}

/// Recomputes the digest after a deliberate change, so checks behind the digest are reached.
func resign(_ bytes: [UInt8]) -> [UInt8] {
    var b = bytes
    for i in 32..<64 { b[i] = 0 }
    let d = Array(SHA256.hash(data: b))
    b.replaceSubrange(32..<64, with: d)
    return b
}

func sorted(_ c: ImageContents) -> ImageContents {
    var c = c
    c.frontends.sort { $0.key < $1.key }
    c.vips.sort { $0.address < $1.address }
    c.nodeAddresses.sort { $0.address < $1.address }
    c.nodes.sort { $0.id.byteSwapped < $1.id.byteSwapped }
    c.sets.sort { $0.key < $1.key }
    c.backends.sort { $0.id.byteSwapped < $1.id.byteSwapped }
    return c
}

@Suite struct ImageFormatTests {
    @Test func abiLayoutsMatchTheHeader() {
        for (name, sizes) in ABI.swiftLayoutSizes {
            #expect(sizes.swift == sizes.header, "\(name): Swift sees \(sizes.swift) bytes, the header says \(sizes.header)")
        }
        #expect(bl_abi_version() == ABI.version)
        for t in ImageTable.allCases {
            #expect(ABI.keySize(t) > 0 && ABI.valueSize(t) > 0 && ABI.maxEntries(t) > 0, "\(t)")
        }
    }

    @Test func roundTrip() throws {
        let c = sampleContents()
        let bytes = ImageEncoder.encode(c)
        let image = try MapImage(bytes: bytes)
        #expect(image.contents == sorted(c))
        #expect(image.header.abiVersion == ABI.version)
        #expect(image.header.sections.map(\.count).prefix(8) == [3, 1, 2, 2, 3, 4, 4, 3])
        // Encoding is a function of the contents, not of the order they were given in.
        var shuffled = c
        shuffled.frontends.reverse()
        shuffled.sets.reverse()
        shuffled.backends.reverse()
        shuffled.nodes.reverse()
        #expect(ImageEncoder.encode(shuffled) == bytes)
    }

    @Test func recordsAreSortedByKeyBytes() throws {
        let bytes = ImageEncoder.encode(sampleContents())
        let header = try ImageDecoder.decodeHeader(bytes)
        for s in header.sections where s.keySize > 0 {
            let stride = s.keySize + s.valueSize
            for i in 1..<max(1, s.count) {
                let a = Array(bytes[(s.offset + (i - 1) * stride)..<(s.offset + (i - 1) * stride + s.keySize)])
                let b = Array(bytes[(s.offset + i * stride)..<(s.offset + i * stride + s.keySize)])
                #expect(a.lexicographicallyPrecedes(b), "\(s.name) record \(i)")
            }
        }
    }

    @Test func truncationAtEveryByteIsRejected() {
        let bytes = ImageEncoder.encode(sampleContents())
        for n in 0..<bytes.count {
            #expect(throws: ImageError.self, "prefix of \(n) bytes") { try MapImage(bytes: Array(bytes[0..<n])) }
        }
        #expect(throws: ImageError.self) { try MapImage(bytes: bytes + [0]) }
    }

    @Test func everyBitFlipIsRejected() {
        let bytes = ImageEncoder.encode(sampleContents())
        for i in 0..<bytes.count {
            var b = bytes
            b[i] ^= UInt8(1 << (i % 8))
            #expect(throws: ImageError.self, "flip at byte \(i)") { try MapImage(bytes: b) }
        }
    }

    /// With the digest recomputed, corruption must still be caught by the structural checks or
    /// decode to a valid image — never crash.
    @Test func resignedCorruptionNeverCrashes() {
        let bytes = ImageEncoder.encode(sampleContents())
        var rejected = 0
        for i in 64..<bytes.count {
            for v: UInt8 in [0x00, 0xFF, bytes[i] ^ 0x10] where v != bytes[i] {
                var b = bytes
                b[i] = v
                do {
                    let image = try MapImage(bytes: resign(b))
                    // Accepted (e.g. a digit changed inside the metadata JSON): it must then be a
                    // self-consistent image whose re-encoding decodes again.
                    #expect((try? MapImage(bytes: ImageEncoder.encode(image.contents))) != nil)
                } catch {
                    rejected += 1
                }
            }
        }
        #expect(rejected > (bytes.count - 64))
    }

    /// The loader's check (`verify`, no model built) refuses exactly what `decode` refuses in the
    /// tables and the container; only the metadata beyond the node list is left to the digest.
    @Test func verifyRefusesWhatDecodeRefuses() throws {
        let bytes = ImageEncoder.encode(sampleContents())
        let header = try ImageDecoder.decodeHeader(bytes)
        let metadataStart = header.sections[ImageTable.allCases.count].offset
        var compared = 0
        for i in 64..<metadataStart {
            for v: UInt8 in [0x00, 0xFF, bytes[i] ^ 0x10] where v != bytes[i] {
                var b = bytes
                b[i] = v
                let signed = resign(b)
                let decoded = (try? ImageDecoder.decode(signed)) != nil
                let verified = (try? ImageDecoder.verify(signed)) != nil
                #expect(decoded == verified, "byte \(i) set to \(v): decode \(decoded), verify \(verified)")
                compared += 1
            }
        }
        #expect(compared > 100)
        // Unsigned corruption: the digest check is part of verify, not of decodeLayout.
        var flipped = bytes
        flipped[metadataStart] ^= 0x01
        #expect(throws: ImageError.self) { try ImageDecoder.verify(flipped) }
        #expect((try? ImageDecoder.decodeLayout(flipped)) != nil)
        // The node list the loader needs comes through.
        #expect(try ImageDecoder.verify(bytes).nodes == ImageDecoder.decode(bytes).1.metadata.nodes)
    }

    @Test func forgedDigestIsRejected() {
        var bytes = ImageEncoder.encode(sampleContents())
        bytes[40] ^= 0xFF
        #expect { try MapImage(bytes: bytes) } throws: { ($0 as? ImageError)?.message.contains("digest mismatch") == true }
    }

    @Test func wrongABIIsRejected() {
        var bytes = ImageEncoder.encode(sampleContents())
        bytes[12] = UInt8(truncatingIfNeeded: ABI.version + 1)
        #expect { try MapImage(bytes: resign(bytes)) } throws: {
            let m = ($0 as? ImageError)?.message ?? ""
            return m.contains("datapath ABI \(ABI.version + 1)") && m.contains("speaks ABI \(ABI.version)")
        }
    }

    @Test func wrongMagicAndFormatAreRejected() {
        var bytes = ImageEncoder.encode(sampleContents())
        bytes[0] = UInt8(ascii: "X")
        #expect { try MapImage(bytes: resign(bytes)) } throws: { ($0 as? ImageError)?.message.contains("magic") == true }
        bytes = ImageEncoder.encode(sampleContents())
        bytes[8] = 9
        #expect { try MapImage(bytes: resign(bytes)) } throws: { ($0 as? ImageError)?.message.contains("format version 9") == true }
    }

    @Test func wrongRecordSizeIsRejected() {
        var bytes = ImageEncoder.encode(sampleContents())
        // Section 0 (frontends): its value size field.
        bytes[64 + 6] &+= 4
        #expect { try MapImage(bytes: resign(bytes)) } throws: { ($0 as? ImageError)?.message.contains("frontends records are") == true }
    }

    @Test func danglingReferencesAreRejected() throws {
        // A slot pointing at a backend that does not exist.
        var c = sampleContents()
        c.sets[0].backends[1] = 0x0999_0009
        #expect { try MapImage(bytes: ImageEncoder.encode(c)) } throws: { ($0 as? ImageError)?.message.contains("not in the backends table") == true }
        // A translate rule whose group has no set.
        c = sampleContents()
        c.frontends[0].rules[0].groupID = 0x5555_5555
        #expect { try MapImage(bytes: ImageEncoder.encode(c)) } throws: { ($0 as? ImageError)?.message.contains("has no backend set") == true }
        // A node address of a node that does not exist.
        c = sampleContents()
        c.nodeAddresses[0].nodeID = 42
        #expect { try MapImage(bytes: ImageEncoder.encode(c)) } throws: { ($0 as? ImageError)?.message.contains("not in the nodes table") == true }
        // Duplicate keys.
        c = sampleContents()
        c.backends.append(c.backends[0])
        #expect { try MapImage(bytes: ImageEncoder.encode(c)) } throws: { ($0 as? ImageError)?.message.contains("ascending") == true }
    }

    /// Serving sets (draining endpoints, for socket termination) round-trip; one with a scope id,
    /// or one that is a translate rule's only set, is refused.
    @Test func servingSets() throws {
        var c = sampleContents()
        let group = c.sets[0].key.groupID
        c.sets.append(BackendSet(key: SetKey(groupID: group, scope: .serving, scopeID: 0), flags: [], backends: [c.backends[2].id]))
        let image = try MapImage(bytes: ImageEncoder.encode(c))
        #expect(image.contents.sets.contains { $0.key.scope == .serving && $0.backends == [c.backends[2].id] })
        var bad = c
        bad.sets[bad.sets.count - 1].key.scopeID = 7
        #expect { try MapImage(bytes: ImageEncoder.encode(bad)) } throws: { ($0 as? ImageError)?.message.contains("serving set with scope id 7") == true }
        bad = c
        bad.sets.removeAll { $0.key.groupID == group && $0.key.scope != .serving }
        #expect { try MapImage(bytes: ImageEncoder.encode(bad)) } throws: { ($0 as? ImageError)?.message.contains("has no backend set") == true }
    }

    @Test func noTimestampsOrPathsInTheBytes() {
        let bytes = ImageEncoder.encode(sampleContents())
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains("/work"))
        #expect(ImageEncoder.encode(sampleContents()) == bytes)
    }
}

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("10.96.0.10", "10.96.0.10"), ("010.096.000.010", "10.96.0.10"), ("172.30.0.041", "172.30.0.41"),
        ("fd00:10:96::a", "fd00:10:96::a"), ("FD00:0010:0096:0000:0000:0000:0000:000A", "fd00:10:96::a"),
        ("::ffff:1.2.3.4", "1.2.3.4"), ("::1", "::1"), ("2001:db8::1:0:0:1", "2001:db8::1:0:0:1"), ("1::", "1::"),
    ])
    func parsesAndNormalises(_ input: String, _ expected: String) {
        #expect(IPAddress(input)?.description == expected)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4444", "::1::2", "1:2:3:4:5:6:7:8:9", "fd00::g", "1.2.3.4 ", "abc"])
    func rejectsInvalid(_ input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func socketAddresses() {
        #expect(SocketAddress("[fd00::1]:443")?.description == "[fd00::1]:443")
        #expect(SocketAddress("10.0.0.1:80")?.port == 80)
        #expect(SocketAddress("fd00::1:443") == nil)
        #expect(SocketAddress("10.0.0.1:70000") == nil)
    }
}

@Suite struct MetadataTests {
    @Test func canonicalJSONRoundTripsAwkwardStrings() throws {
        var m = ImageMetadata()
        m.diagnostics = [DiagnosticInfo(severity: "warning", object: "Service a/\"b\"", field: "spec.x\\y",
                                        message: "tab\there, newline\nhere, bell \u{07}, ünïcödé, emoji 🛰")]
        m.counts = ["b": 2, "a": 1, "skipped/Z": 3]
        m.nodes = [NodeInfo(id: 7, name: "n", zone: nil, addresses: [], object: false)]
        m.services = [ServiceInfo(id: 1, namespace: "d", name: "s", type: "ClusterIP", internalTrafficPolicy: "Local",
                                  externalTrafficPolicy: "Cluster", affinityTimeout: nil)]
        let bytes = m.canonicalJSON()
        #expect(try ImageMetadata.decode(bytes) == m)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("{\"compiler\":\"balancer "))
        #expect(text.contains("\"counts\":{\"a\":1,\"b\":2,\"skipped/Z\":3}"))
        #expect(text.contains("\\u0007"))
        #expect(!text.contains("\"zone\""))
    }
}
