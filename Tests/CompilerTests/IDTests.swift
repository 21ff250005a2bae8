@testable import Compiler
import MapImage
import Testing

@Suite struct IDTests {
    @Test func denseCollisionsAreSettledByIdentity() {
        // Everything hashes to 5: identities in order take 5, 6, 7.
        #expect(StableID.assignDense([30, 10, 20], hash: { _ in 5 }) == [7, 5, 6])
        // A collision's shifted id pushes the identity whose hash it lands on.
        #expect(StableID.assignDense([1, 2, 3], hash: { [1: 9, 2: 9, 3: 10][$0] ?? 0 }) == [9, 10, 11])
        // Hash 0 is reserved.
        #expect(StableID.assignDense([1], hash: { _ in 0 }) == [1])
        // Wrapping past the top probes from the hash for a free value.
        let ids = StableID.assignDense([1, 2, 3], hash: { _ in UInt32.max })
        #expect(ids[0] == UInt32.max)
        #expect(Set(ids).count == 3 && !ids.contains(0))
    }

    @Test func explicitIDsWinAndConflictsAreReported() {
        var conflicts: [(String, String, UInt32)] = []
        let ids = StableID.assign(["a", "b", "c"], explicit: ["b": 42, "c": 42], hash: { _ in 42 }) { conflicts.append(($0, $1, $2)) }
        #expect(ids["b"] == 42)
        #expect(ids["a"] != 42 && ids["c"] != 42 && ids["a"] != ids["c"])
        #expect(conflicts.count == 1 && conflicts[0].0 == "b" && conflicts[0].1 == "c")
    }

    @Test func hashIsFNV1aFolded() {
        // FNV-1a-64 of "" is the offset basis; folded: low ^ high.
        #expect(StableID.hash("") == (UInt32(0x8422_2325) ^ UInt32(0xcbf2_9ce4)))
        #expect(StableID.hash(words: 0) == StableID.hash([UInt8](repeating: 0, count: 8)))
    }
}

/// The one rule that keys a set by its scope, for full and incremental compiles alike.
@Suite struct SetKeyTests {
    @Test func scopesTakeTheirZoneOrNodeID() {
        let zones = ["eu-1a": UInt32(7)], nodes = ["n1": UInt32(9)]
        func id(_ scope: SetScope, _ name: String) -> UInt32 {
            let key = SetKey(groupID: 3, scope: scope, scopeName: name, zoneIDs: zones, nodeIDs: nodes)
            #expect(key.groupID == 3 && key.scope == scope)
            return key.scopeID
        }
        #expect(id(.cluster, "") == 0)
        #expect(id(.zone, "eu-1a") == 7)
        #expect(id(.node, "n1") == 9 && id(.local, "n1") == 9 && id(.gate, "n1") == 9)
        // A zone is not looked up among nodes, nor a node among zones.
        #expect(id(.zone, "n1") == 0 && id(.node, "eu-1a") == 0)
    }
}

@Suite struct IDEdgeTests {
    @Test func emptyAndSingle() {
        #expect(StableID.assignDense([Int](), hash: { _ in 1 }).isEmpty)
        #expect(StableID.assignDense([7], hash: { _ in 3 }) == [3])
    }
}

@Suite struct AssignPositionsTests {
    @Test func explicitThenDense() {
        // c and a ask for 42; a (first in identity order) keeps it; b's hash is 42 too and steps over.
        var conflicts: [(Int, Int, UInt32)] = []
        let ids = StableID.assignPositions(["c", "a", "b"], hashes: [7, 9, 42], explicit: [0: 42, 1: 42]) { conflicts.append(($0, $1, $2)) }
        #expect(ids[1] == 42)
        #expect(conflicts.count == 1 && conflicts[0].0 == 1 && conflicts[0].1 == 0)
        #expect(ids[0] == 7)
        #expect(ids[2] == 43)
        #expect(Set(ids).count == 3)
    }

    @Test func wrapProbesForFreeValues() {
        let ids = StableID.assignPositions(["a", "b", "c"], hashes: [UInt32.max, UInt32.max, 1], explicit: [:])
        #expect(Set(ids).count == 3 && !ids.contains(0))
        #expect(ids[2] == 1)
    }
}
