@testable import Loader
import MapImage
import Testing

/// GenerationWriter's decisions on in-memory maps: what it writes, where, in which order, and
/// what is live when another process or a failure gets in the way.
@Suite struct GenerationWriterTests {
    let a: VerifiedImage
    let b: VerifiedImage
    let c: VerifiedImage

    init() throws { (a, b, c) = try Golden.three() }

    @Test func firstLoadFillsTheStandbyFreshThenFlips() throws {
        let rig = try Rig()
        let report = try rig.writer().load(image: a.bytes)
        #expect(report.method == .fresh)
        #expect(report.generation == 1)
        #expect(try rig.liveEquals(a))
        #expect(try rig.datapath().imageDigest(1) == a.header.digest)
        // Marked filling, published, named, then the flip, last.
        let writes = rig.visibleWrites
        #expect(writes.first == "update bl_generations")
        #expect(writes.last == "update bl_config")
        #expect(writes.filter { $0.hasPrefix("insert bl_") }.count == ImageTable.allCases.count)
        #expect(writes.dropLast().last == "update bl_generations")
    }

    @Test func freshMapsGetHeadroom() throws {
        let rig = try Rig()
        _ = try rig.writer(headroom: 0.5).load(image: a.bytes)
        let dp = try rig.datapath()
        for table in ImageTable.allCases {
            let count = ImageTableView(header: a.header, bytes: a.bytes, table: table).count
            let info = try #require(try dp.outer[table]?.inner(1)).info()
            #expect(info.maxEntries == max(count, min(count + count / 2 + 64, ABI.maxEntries(table)), 1), "\(table)")
        }
    }

    @Test func loadingTheLiveImageAgainWritesNothing() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        rig.maps.clearEvents()
        let again = try writer.load(image: a.bytes)
        #expect(again.method == .unchanged && again.unchanged)
        #expect(rig.visibleWrites.isEmpty)
        // Another process (`balancer load` of the same image): nothing either.
        rig.maps.clearEvents()
        let other = try rig.datapath().load(imageBytes: a.bytes, node: nil, hostMode: .pod)
        #expect(other.unchanged && other.generation == 1)
        #expect(rig.visibleWrites.isEmpty)
    }

    @Test func theLiveImageOnAnotherNodeWritesOnlyTheConfig() throws {
        let rig = try Rig()
        _ = try rig.writer().load(image: a.bytes)
        rig.maps.clearEvents()
        let report = try rig.writer(node: "demo-worker", hostMode: .pod).load(image: a.bytes)
        #expect(!report.unchanged && report.method == .unchanged)
        #expect(rig.visibleWrites == ["update bl_config"])
        let config = try rig.datapath().readConfig()
        #expect(config.activeGeneration == 1)
        #expect(config.nodeID == (try a.nodeID(named: "demo-worker")))
    }

    @Test func theStandbyGetsOnlyTheRecordsItLacks() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        #expect(try writer.load(image: b.bytes).method == .fresh)  // the other generation: unknown
        rig.maps.clearEvents()
        let back = try writer.load(image: a.bytes)
        #expect(back.method == .delta)
        #expect(!rig.maps.events.contains { $0.hasPrefix("create") })
        #expect(try rig.liveEquals(a))
        #expect(try rig.standbyEquals(b))
        // The standby (b) lacks what made a live, then c's differences.
        #expect(try writer.load(image: c.bytes).method == .delta)
        #expect(try rig.liveEquals(c))
        #expect(try rig.standbyEquals(a))
        // Deltas: the standby catches up with what it missed, then gets the delta.
        for (image, previous) in [(b, c), (a, b), (c, a)] {
            let delta = RecordDelta.between(old: previous.header, previous.bytes, new: image.header, image.bytes)
            let r = try writer.apply(delta)
            #expect(r.method == .delta)
            #expect(try rig.liveEquals(image))
            #expect(try rig.standbyEquals(previous))
        }
    }

    @Test func aTableBeyondItsCapacityIsRefilled() throws {
        let rig = try Rig()
        let writer = try rig.writer(headroom: 0)
        _ = try writer.load(image: a.bytes)  // generation 1: a's counts + 64
        #expect(try writer.apply(addedBackends(10)).method == .fresh)  // generation 0 was unknown
        let small = try writer.apply(addedBackends(10, from: 0x7100_0000))
        #expect(small.method == .delta && small.refilled.isEmpty)
        // Generation 0 holds a's backends + 10 + 64: 65 more do not fit in place.
        let large = try writer.apply(addedBackends(65, from: 0x7200_0000))
        #expect(large.method == .delta)
        #expect(large.refilled == [ImageTable.backends.description])
        let dp = try rig.datapath()
        let live = try #require(try dp.outer[.backends]?.inner(dp.readConfig().activeGeneration))
        #expect(try live.keys(keySize: 4).count == ImageTableView(header: a.header, bytes: a.bytes, table: .backends).count + 85)
    }

    @Test func aRollbackByAnotherProcessIsNoticed() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        _ = try writer.load(image: b.bytes)
        #expect(try rig.datapath().rollback() == 1)  // a is live again, behind the writer's back
        rig.maps.clearEvents()
        let report = try writer.load(image: c.bytes)
        // The writer cannot know what either generation holds: a fresh fill.
        #expect(report.method == .fresh)
        #expect(try rig.liveEquals(c))
        #expect(try rig.standbyEquals(a))
    }

    @Test func mapsReplacedByAnotherProcessAreNoticed() throws {
        let rig = try Rig()
        let writer = try rig.writer()
        _ = try writer.load(image: a.bytes)
        _ = try writer.load(image: b.bytes)
        // `balancer load` of c, then of b again: the writer's generation 1 now holds other maps.
        _ = try rig.datapath().load(imageBytes: c.bytes, node: nil, hostMode: .pod)
        _ = try rig.datapath().load(imageBytes: b.bytes, node: nil, hostMode: .pod)
        #expect(try rig.datapath().readConfig().activeGeneration == 0)
        let report = try writer.load(image: a.bytes)
        #expect(report.method == .fresh)
        #expect(try rig.liveEquals(a))
        #expect(try rig.standbyEquals(b))
    }

    @Test func aDeltaNeedsAnImageFirst() throws {
        let rig = try Rig()
        #expect(throws: LoadError.self) { try rig.writer().apply(addedBackends(1)) }
        #expect(rig.visibleWrites.isEmpty)
    }
}
