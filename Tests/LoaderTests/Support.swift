@testable import Loader
import HostSystem
import MapImage
import Testing

/// A datapath pinned in memory, as `balancer attach` leaves one: no image, generation 0 live.
struct Rig {
    let maps: MemoryMaps
    let pinDir = "/memory/bpf"

    init(gracePeriodSeconds: Double = 0.002) throws {
        maps = MemoryMaps(gracePeriodSeconds: gracePeriodSeconds)
        try maps.attach(pinDir: pinDir)
    }

    /// Another process's view of the same maps.
    func datapath() throws -> Datapath { try Datapath(pinDir: pinDir, backend: maps) }

    func writer(node: String? = nil, hostMode: HostMode = .pod, headroom: Double = 0.25) throws -> GenerationWriter {
        GenerationWriter(datapath: try datapath(), node: node, hostMode: hostMode, headroom: headroom)
    }

    /// Whether the live generation holds exactly `image`, record for record.
    func liveEquals(_ image: VerifiedImage) throws -> Bool {
        try datapath().compareLive(with: image).isEqual
    }

    /// Whether the generation that is not live holds exactly `image` (what rollback would make
    /// live), read without flipping.
    func standbyEquals(_ image: VerifiedImage) throws -> Bool {
        let dp = try datapath()
        let standby = try dp.readConfig().activeGeneration ^ 1
        for table in ImageTable.allCases {
            let view = ImageTableView(header: image.header, bytes: image.bytes, table: table)
            guard let inner = try dp.outer[table]?.inner(standby) else { return false }
            let dump = try inner.dump(keySize: view.keySize, valueSize: view.valueSize)
            var live: [[UInt8]: [UInt8]] = [:]
            for i in 0..<dump.count {
                live[Array(dump.keys[(i * view.keySize)..<((i + 1) * view.keySize)])] =
                    Array(dump.values[(i * view.valueSize)..<((i + 1) * view.valueSize)])
            }
            guard live.count == view.count else { return false }
            for i in 0..<view.count where live[view.key(at: i)] != view.value(at: i) { return false }
        }
        return true
    }

    /// Events that change what a program or another loader sees (not map creation, fills of
    /// maps not published yet, or grace periods).
    var visibleWrites: [String] {
        maps.events.filter { !$0.contains("create ") && !$0.hasPrefix("fill ") && $0 != "grace period" }
    }
}

/// The golden images (compiled from fixtures/), verified.
enum Golden {
    static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/golden"
    }()

    static func image(_ name: String) throws -> VerifiedImage {
        try ImageDecoder.verify(try FileContents.read(directory + "/\(name).image"))
    }

    /// Three images that differ in every table.
    static func three() throws -> (VerifiedImage, VerifiedImage, VerifiedImage) {
        (try image("example"), try image("clusterip-basic"), try image("loadbalancer"))
    }
}

/// A delta that adds `count` backends with ids from `first` (values need not make sense: the
/// writer copies records, it does not read them).
func addedBackends(_ count: Int, from first: UInt32 = 0x7000_0000) -> RecordDelta {
    var delta = RecordDelta()
    for i in 0..<UInt32(count) {
        let key = withUnsafeBytes(of: (first + i).littleEndian) { Array($0) }
        delta.set(.backends, key: key, value: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: ABI.valueSize(.backends)))
    }
    return delta
}
