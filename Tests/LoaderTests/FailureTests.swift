@testable import Loader
import CBalancerABI
import MapImage
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A write stopped half-way: the live generation keeps serving, the standby is known to be
/// unknown, rollback refuses an incomplete generation, and the next load repairs it.
@Suite struct FailureTests {
    let a: VerifiedImage
    let b: VerifiedImage
    let c: VerifiedImage

    init() throws { (a, b, c) = try Golden.three() }

    @Test func aFailedDeltaWriteLeavesTheLiveGenerationServing() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        _ = try writer.load(image: b.bytes)
        // The next load writes generation 1's maps in place; the third record fails.
        let calls = Counter()
        rig.maps.failing { event in event.hasPrefix("batch update bl_g1_") && calls.next() == 3 ? ENOMEM : nil }
        #expect(throws: LoadError.self) { try writer.load(image: c.bytes) }
        rig.maps.failing(nil)
        let dp = try rig.datapath()
        #expect(try dp.readConfig().activeGeneration == 0)
        #expect(try rig.liveEquals(b))
        #expect(try dp.isIncomplete(1))
        #expect(throws: BPFError.self) { try dp.rollback() }
        // The writer no longer trusts generation 1: it fills it fresh.
        rig.maps.clearEvents()
        let retry = try writer.load(image: c.bytes)
        #expect(retry.method == .fresh)
        #expect(try rig.liveEquals(c))
        #expect(try rig.standbyEquals(b))
        #expect(try dp.rollback() == 0)
        #expect(try rig.liveEquals(b))
    }

    @Test func aFailedFlipLeavesTheLiveGenerationServing() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        rig.maps.failing { $0 == "update bl_config" ? EIO : nil }
        #expect(throws: LoadError.self) { try writer.load(image: b.bytes) }
        rig.maps.failing(nil)
        #expect(try rig.liveEquals(a))
        #expect(try rig.datapath().isIncomplete(0) == false)
        // Loaded again: written (not taken for the live image), and live.
        let retry = try writer.load(image: b.bytes)
        #expect(retry.method == .fresh)
        #expect(try rig.liveEquals(b))
    }

    @Test func aFailureBeforeAnyVisibleWriteChangesNothing() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        _ = try writer.load(image: b.bytes)
        rig.maps.clearEvents()
        // Creating the fresh maps fails (a fresh fill: another process flipped).
        #expect(try rig.datapath().rollback() == 1)
        rig.maps.failing { $0.hasPrefix("create bl_g0_") ? ENOMEM : nil }
        #expect(throws: LoadError.self) { try writer.load(image: c.bytes) }
        rig.maps.failing(nil)
        #expect(rig.visibleWrites == ["update bl_config"])  // the rollback only
        #expect(try rig.liveEquals(a))
        #expect(try rig.datapath().isIncomplete(0) == false)
        #expect(try rig.datapath().rollback() == 0)
        #expect(try rig.liveEquals(b))
    }

    @Test func anImageThatDoesNotVerifyIsNeverVisible() throws {
        let rig = try Rig()
        _ = try rig.writer().load(image: a.bytes)
        rig.maps.clearEvents()
        var corrupt = b.bytes
        let backends = ImageTableView(header: b.header, bytes: b.bytes, table: .backends)
        corrupt[backends.records.startIndex + 5] ^= 0x40  // a record byte: the digest no longer matches
        #expect(throws: LoadError.self) { try rig.writer().load(image: corrupt) }
        #expect(rig.visibleWrites.isEmpty, "\(rig.maps.events)")
        #expect(try rig.liveEquals(a))
    }

    @Test func anUnknownNodeIsRefusedBeforeAnyVisibleWrite() throws {
        let rig = try Rig()
        _ = try rig.writer().load(image: a.bytes)
        rig.maps.clearEvents()
        #expect(throws: LoadError.self) { try rig.writer(node: "no-such-node").load(image: b.bytes) }
        #expect(rig.visibleWrites.isEmpty)
    }

    @Test func rollbackNeedsAPreviousGeneration() throws {
        let rig = try Rig()
        _ = try rig.writer().load(image: a.bytes)
        #expect(throws: BPFError.self) { try rig.datapath().rollback() }
    }
}

/// Counts calls from the maps' threads.
final class Counter: Sendable {
    private let n = Mutex(0)
    func next() -> Int { n.withLock { $0 += 1; return $0 } }
}
