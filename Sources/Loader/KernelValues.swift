import CBalancerABI
import MapImage

// The loader's kernel-facing values (config, counters, skip keys, generation records), built as
// the C structs balancer_abi.h declares, field by field, as MapImage's ABIRecords does for image
// records: a field added or moved in the header changes both sides at once instead of silently
// misplacing the bytes of the generation flip. Multi-byte integers are little-endian, whatever
// the host (the datapath's maps are read on the same host, but images and tests are portable).

/// The bytes of a C struct as the kernel takes them.
func structBytes<T>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// A C struct read from the kernel's bytes; a short or missing value reads as zeros, as an
/// array entry never written does.
func structValue<T>(_ initial: T, _ bytes: [UInt8]?) -> T {
    var value = initial
    guard let bytes else { return value }
    withUnsafeMutableBytes(of: &value) { raw in
        bytes.prefix(raw.count).withUnsafeBytes { raw.copyMemory(from: $0) }
    }
    return value
}

/// The key of an array map entry (and of the per-frontend counters): a 32-bit index.
func arrayKey(_ index: UInt32) -> [UInt8] { structBytes(index.littleEndian) }

extension Datapath.Config {
    /// Decodes `bl_config`; `active_gen` is read as the datapath reads it (its low bit).
    init(_ c: bl_config) {
        activeGeneration = UInt32(littleEndian: c.active_gen) & 1
        nodeID = UInt32(littleEndian: c.node_id)
        hostMode = UInt32(littleEndian: c.host_mode) == BL_HOST_MODE_NODEPORT.rawValue ? .nodeport : .pod
        clusterID = UInt8(truncatingIfNeeded: UInt32(littleEndian: c.cluster_id))
        nodeportClusters = withUnsafeBytes(of: c.nodeport_clusters) { raw in
            (0..<4).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }

    /// The `bl_config` the flip writes. `flags` is 0: the header gives it no meaning and the
    /// datapath does not read it (the bytes are those the loader has always written).
    var abi: bl_config {
        var c = bl_config()
        c.active_gen = activeGeneration.littleEndian
        c.node_id = nodeID.littleEndian
        c.host_mode = (hostMode == .nodeport ? BL_HOST_MODE_NODEPORT.rawValue : BL_HOST_MODE_POD.rawValue).littleEndian
        c.cluster_id = UInt32(clusterID).littleEndian
        let words = nodeportClusters + [UInt64](repeating: 0, count: max(0, 4 - nodeportClusters.count))
        c.nodeport_clusters = (words[0].littleEndian, words[1].littleEndian, words[2].littleEndian, words[3].littleEndian)
        return c
    }
}

/// One frontend's connects by outcome, as the datapath counts them (`bl_counters`, summed over
/// the CPUs).
public struct Counters: Sendable, Equatable {
    public var translated: UInt64 = 0
    public var rejected: UInt64 = 0
    public var unreachable: UInt64 = 0
    public var `fallthrough`: UInt64 = 0

    public init(translated: UInt64 = 0, rejected: UInt64 = 0, unreachable: UInt64 = 0, fallthrough: UInt64 = 0) {
        self.translated = translated
        self.rejected = rejected
        self.unreachable = unreachable
        self.fallthrough = `fallthrough`
    }

    init(_ c: bl_counters) {
        self.init(translated: UInt64(littleEndian: c.translated), rejected: UInt64(littleEndian: c.rejected),
                  unreachable: UInt64(littleEndian: c.unreachable), fallthrough: UInt64(littleEndian: c.fallthrough))
    }

    /// Sums one CPU's counters into these (the counters wrap, as the kernel's do).
    mutating func add(_ other: Counters) {
        translated &+= other.translated
        rejected &+= other.rejected
        unreachable &+= other.unreachable
        self.fallthrough &+= other.fallthrough
    }

    /// The outcomes by their exposition names, in the header's field order.
    public var outcomes: [(name: String, value: UInt64)] {
        [("translated", translated), ("rejected", rejected), ("unreachable", unreachable), ("fallthrough", self.fallthrough)]
    }
}

extension Datapath {
    /// A `bl_skip` key: a policy's backend namespace.
    static func skipKey(cookie: UInt64, owner: UInt32) -> [UInt8] {
        structBytes(bl_skip_key(netns_cookie: cookie.littleEndian, owner_id: owner.littleEndian, pad: 0))
    }

    /// The `bl_skip` value of an entry that is present.
    static let skipPresent = structBytes(bl_skip_value(present: UInt32(1).littleEndian))

    /// Marks a generation being filled: a load killed half-way leaves it marked, and rollback
    /// refuses to make such a generation live.
    static let filling = [UInt8](repeating: 0xFF, count: MemoryLayout<bl_generation_value>.size)

    /// The record of a generation whose content is known only record by record (after a delta).
    static let unknownDigest = [UInt8](repeating: 0, count: MemoryLayout<bl_generation_value>.size)
}
