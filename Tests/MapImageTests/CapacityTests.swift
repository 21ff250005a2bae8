import CBalancerABI
import Foundation
import HostSystem
import MapImage
import Testing

/// The capacities an image must fit, found before encoding; and the writers that never write
/// an image the verifier refuses.
@Suite struct CapacityTests {
    /// Each table's limit is the header's constant of that name.
    @Test func constantsNameTheHeadersValues() {
        let header: [ImageTable: UInt32] = [
            .frontends: BL_MAX_FRONTENDS, .vips: BL_MAX_VIPS, .nodeAddresses: BL_MAX_NODE_ADDRS, .nodes: BL_MAX_NODES,
            .sets: BL_MAX_SETS, .slots: BL_MAX_SLOTS, .members: BL_MAX_MEMBERS, .backends: BL_MAX_BACKENDS,
            .serviceCIDRs: BL_MAX_SERVICE_CIDRS, .sourceRanges: BL_MAX_SOURCE_RANGES,
        ]
        let names: [ImageTable: String] = [
            .frontends: "BL_MAX_FRONTENDS", .vips: "BL_MAX_VIPS", .nodeAddresses: "BL_MAX_NODE_ADDRS", .nodes: "BL_MAX_NODES",
            .sets: "BL_MAX_SETS", .slots: "BL_MAX_SLOTS", .members: "BL_MAX_MEMBERS", .backends: "BL_MAX_BACKENDS",
            .serviceCIDRs: "BL_MAX_SERVICE_CIDRS", .sourceRanges: "BL_MAX_SOURCE_RANGES",
        ]
        for t in ImageTable.allCases {
            #expect(ImageCapacity.constant(t) == names[t], "\(t)")
            #expect(ABI.maxEntries(t) == header[t].map(Int.init), "\(t)")
        }
        #expect(ImageCapacity.maxRules == Int(BL_MAX_RULES))
        #expect(ImageCapacity.maxSetSize.limit == Int(min(BL_MAX_BACKENDS, BL_MAX_SLOTS, BL_MAX_MEMBERS)))
    }

    /// A pure function of the counts: at the limit nothing, one past it one problem naming the
    /// table, the count, the limit and the constant.
    @Test func everyTableAtAndPastItsLimit() {
        for t in ImageTable.allCases {
            let limit = ABI.maxEntries(t)
            #expect(ImageCapacity.check(counts: [t: limit]).isEmpty, "\(t)")
            let problems = ImageCapacity.check(counts: [t: limit + 1])
            #expect(problems == [CapacityProblem(subject: .table(t), count: limit + 1, limit: limit, constant: ImageCapacity.constant(t))])
            #expect(problems.first?.description
                == "\(t): \(limit + 1) records exceed the datapath's capacity of \(limit) (\(ImageCapacity.constant(t)) in bpf/include/balancer_abi.h; raise it and rebuild balancer (swift build compiles the datapath with it))")
        }
        let slots = ABI.maxEntries(.slots)
        #expect(ImageCapacity.check(counts: [.slots: slots + 5, .members: slots + 5, .nodes: 3]).map(\.subject) == [.table(.slots), .table(.members)])
    }

    /// One set past a set's size, and frontends with no rule or too many, in otherwise small
    /// contents (the tables themselves fit).
    @Test func oversizedSetsAndRuleLists() {
        var c = sampleContents()
        let (limit, table) = ImageCapacity.maxSetSize
        #expect(ImageCapacity.check(c).isEmpty)
        c.sets[0].backends = (1...UInt32(limit + 1)).map { $0 }
        let problems = ImageCapacity.check(c)
        #expect(problems == [CapacityProblem(subject: .set(c.sets[0].key), count: limit + 1, limit: limit, constant: ImageCapacity.constant(table))])

        var d = sampleContents()
        let rule = d.frontends[0].rules[0]
        d.frontends[0].rules = Array(repeating: rule, count: ImageCapacity.maxRules + 1)
        d.frontends[1].rules = []
        #expect(ImageCapacity.check(d).map(\.subject) == [.frontendRules(d.frontends[0].key), .frontendRules(d.frontends[1].key)])
        #expect(ImageCapacity.check(d).first?.description.contains("has 4 rules; a frontend holds 1 to 3 (BL_MAX_RULES in bpf/include/balancer_abi.h") == true)
    }

    /// What the checks guard: past a limit the encoder's image is one the verifier refuses, so
    /// encodeVerified refuses the contents before encoding.
    @Test func encodeVerifiedRefusesWhatTheVerifierWould() throws {
        var c = sampleContents()
        c.frontends[0].rules = Array(repeating: c.frontends[0].rules[0], count: 4)
        #expect(throws: ImageError.self) { try MapImage(bytes: ImageEncoder.encode(c)) }
        #expect { try ImageEncoder.encodeVerified(c) } throws: { error in
            guard case .capacity(let p)? = error as? ImageBuildError else { return false }
            return p.map(\.subject) == [.frontendRules(c.frontends[0].key)]
        }
        // Contents the capacity checks pass but the verifier refuses (a slot whose backend does
        // not exist): the encoder's output is verified, and the error says it is a bug.
        var bad = sampleContents()
        bad.backends.removeLast()
        #expect { try ImageEncoder.encodeVerified(bad) } throws: { error in
            guard case .verification(let e)? = error as? ImageBuildError else { return false }
            return e.message.contains("not in the backends table") && "\(error)".contains("a bug in balancer")
        }
        // Valid contents: exactly the encoder's bytes.
        #expect(try ImageEncoder.encodeVerified(sampleContents()) == ImageEncoder.encode(sampleContents()))
    }

    /// The image decoder's own capacity error says which constant to raise (it is what a
    /// watcher's sink or `load` reports for a forged or foreign image).
    @Test func verifierNamesTheConstant() {
        var c = sampleContents()
        let n = ABI.maxEntries(.nodes) + 1
        c.nodes = (1...UInt32(n)).map { ImageNode(id: $0, zoneID: 0, flags: [], ipv4: nil, ipv6: nil) }
        #expect { try MapImage(bytes: ImageEncoder.encode(c)) } throws: { error in
            "\(error)".contains("nodes: \(n) records exceed the datapath's capacity of \(n - 1) (BL_MAX_NODES in bpf/include/balancer_abi.h")
        }
    }

    /// ImageFile.writeImage (what `watch --output-dir` writes with) refuses bytes that do not
    /// verify and leaves no file; verified bytes are written as they are.
    @Test func writeImageVerifiesFirst() throws {
        let dir = NSTemporaryDirectory() + "balancer-write-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var corrupt = ImageEncoder.encode(sampleContents())
        corrupt[corrupt.count - 9] ^= 0x01
        #expect { try ImageFile.writeImage(corrupt, to: dir + "/x.image") } throws: { error in
            "\(error)".hasPrefix("\(dir)/x.image: not written: the image does not pass verification: invalid image: digest mismatch")
        }
        // Metadata that decodes as the loader reads it (nodes only) but not as `inspect` does.
        var bytes = ImageEncoder.encode(sampleContents())
        let meta = try ImageDecoder.decodeHeader(bytes).sections[ImageTable.allCases.count]
        let text = Array("\"compiler\":".utf8)
        if let at = (meta.offset..<(meta.offset + meta.length)).first(where: { Array(bytes[$0..<($0 + text.count)]) == text }) {
            bytes[at + 1] = UInt8(ascii: "C")  // "Compiler": the required key is missing
        }
        bytes = resign(bytes)
        #expect(throws: Never.self) { try ImageDecoder.verify(bytes) }
        #expect(throws: ImageFile.WriteError.self) { try ImageFile.writeImage(bytes, to: dir + "/y.image") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

        let good = ImageEncoder.encode(sampleContents())
        try ImageFile.writeImage(good, to: dir + "/z.image")
        #expect(try FileContents.read(dir + "/z.image") == good)
    }
}
