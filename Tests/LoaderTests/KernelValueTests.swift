@testable import Loader
import CBalancerABI
import MapImage
import Testing

/// The loader's kernel-facing values against the bytes the datapath reads (balancer_abi.h).
@Suite struct KernelValueTests {
    /// The flip's bytes: active_gen, node_id, host_mode, flags, cluster_id, pad, each a
    /// little-endian 32-bit word, then the four 64-bit words of nodeport_clusters.
    @Test func configBytes() throws {
        var config = Datapath.Config(activeGeneration: 1, nodeID: 0x0403_0201, hostMode: .nodeport)
        var bytes = structBytes(config.abi)
        let mode = BL_HOST_MODE_NODEPORT.rawValue
        let head: [UInt8] = [1, 0, 0, 0, 1, 2, 3, 4, UInt8(mode & 0xFF), UInt8(mode >> 8 & 0xFF), UInt8(mode >> 16 & 0xFF), UInt8(mode >> 24), 0, 0, 0, 0]
        #expect(bytes == head + [UInt8](repeating: 0, count: 40))
        #expect(Datapath.Config(structValue(bl_config(), bytes)) == config)
        // Cluster 7 hosts this machine; clusters 1 and 65 are reached through NodePorts.
        config = Datapath.Config(activeGeneration: 1,
                                 placement: HostPlacement(nodeID: 0x0403_0201, clusterID: 7, hostMode: .nodeport, clusterModes: [1: .nodeport, 2: .pod, 65: .nodeport]))
        bytes = structBytes(config.abi)
        #expect(bytes == head + [7, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16))
        #expect(Datapath.Config(structValue(bl_config(), bytes)) == config)
        // The datapath reads the generation's low bit; a short value reads as zeros.
        #expect(Datapath.Config(structValue(bl_config(), [3, 0, 0, 0])).activeGeneration == 1)
        #expect(Datapath.Config(structValue(bl_config(), [])).hostMode == .pod)
    }

    @Test func configWrittenByALoad() throws {
        let rig = try Rig()
        let image = try Golden.image("example")
        _ = try rig.writer(node: "demo-worker2", hostMode: .pod).load(image: image.bytes)
        let dp = try rig.datapath()
        let raw = try #require(try dp.config.lookup(key: [0, 0, 0, 0], valueSize: MemoryLayout<bl_config>.size))
        let id = try image.nodeID(named: "demo-worker2")
        let pod = BL_HOST_MODE_POD.rawValue
        #expect(raw == [1, 0, 0, 0] + withUnsafeBytes(of: id.littleEndian) { Array($0) } + withUnsafeBytes(of: pod.littleEndian) { Array($0) }
                + [UInt8](repeating: 0, count: 44))
    }

    /// A load into a multi-cluster image places the host: its node's cluster, and the clusters
    /// in mode nodeport; names the image does not have are refused before anything is written.
    @Test func clusterPlacementWrittenByALoad() throws {
        let rig = try Rig()
        let image = try Golden.image("multicluster-two")
        let host = HostSettings(node: "worker-2", cluster: "west", hostMode: .pod, clusterModes: ["east": .nodeport])
        _ = try GenerationWriter(datapath: try rig.datapath(), host: host, headroom: 0).load(image: image.bytes)
        let config = try rig.datapath().readConfig()
        #expect(config.nodeID == (try image.nodeID(named: "west/worker-2")))
        #expect(config.clusterID == 2)
        #expect(config.nodeportClusters == [2, 0, 0, 0])
        // --host-mode nodeport alone: every cluster of the image is reached through NodePorts.
        _ = try GenerationWriter(datapath: try rig.datapath(), host: HostSettings(hostMode: .nodeport), headroom: 0).load(image: image.bytes)
        #expect(try rig.datapath().readConfig().nodeportClusters == [0b110, 0, 0, 0])
        #expect(try rig.datapath().readConfig().clusterID == 0)
        // The node alone names its cluster.
        _ = try GenerationWriter(datapath: try rig.datapath(), host: HostSettings(node: "east/worker-1"), headroom: 0).load(image: image.bytes)
        #expect(try rig.datapath().readConfig().clusterID == 1)
        for bad in [HostSettings(cluster: "south"), HostSettings(node: "worker-1", cluster: "east", clusterModes: ["north": .pod]),
                    HostSettings(node: "east/worker-1", cluster: "west")] {
            #expect(throws: LoadError.self) { try GenerationWriter(datapath: try rig.datapath(), host: bad, headroom: 0).load(image: image.bytes) }
        }
        #expect(try rig.datapath().readConfig().clusterID == 1)
    }

    /// bl_skip_key: the namespace cookie, then the policy id, then 4 bytes of padding.
    @Test func skipKeyBytes() {
        let key = Datapath.skipKey(cookie: 0x0807_0605_0403_0201, owner: 0x0C0B_0A09)
        #expect(key == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0])
        #expect(Datapath.skipPresent == [1, 0, 0, 0])
    }

    /// Counters are summed over the CPUs, field by field, and keyed by frontend id.
    @Test func countersSumOverCPUs() throws {
        let rig = try Rig()
        _ = try rig.writer().load(image: try Golden.image("example").bytes)
        let counters = try #require(try rig.maps.pinned("\(rig.pinDir)/maps/bl_counters") as? MemoryMap)
        func cpu(_ t: UInt64, _ r: UInt64, _ u: UInt64, _ f: UInt64) -> [UInt8] {
            structBytes(bl_counters(translated: t.littleEndian, rejected: r.littleEndian, unreachable: u.littleEndian, fallthrough: f.littleEndian))
        }
        counters.setPerCPU(key: arrayKey(0x1234_5678), values: [cpu(1, 2, 3, 4), cpu(10, 20, 30, 40)])
        counters.setPerCPU(key: arrayKey(0), values: [cpu(0, 0, 0, 1), cpu(0, 0, 0, 0)])
        let status = try rig.datapath().status(links: [])
        #expect(status.counters[0x1234_5678] == Counters(translated: 11, rejected: 22, unreachable: 33, fallthrough: 44))
        #expect(status.counters[0] == Counters(fallthrough: 1))
        #expect(status.counters[0x1234_5678]?.outcomes.map(\.name) == ["translated", "rejected", "unreachable", "fallthrough"])
        #expect(status.liveImage != nil)
        #expect(status.tables.count == ImageTable.allCases.count)
    }
}
