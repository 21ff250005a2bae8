import MapImage

/// `balancer check-live`: the live generation's tables against an image, record by record. It
/// reads what the kernel holds (batch lookups), not what the loader recorded, so it proves the
/// datapath serves exactly the image however it was written (whole loads, deltas, rollbacks).
extension Datapath {
    public struct LiveDifference: Sendable {
        public var table: ImageTable
        public var key: [UInt8]
        /// The live record's value; nil when the live generation lacks the key.
        public var live: [UInt8]?
        /// The image's value; nil when the image lacks the key.
        public var image: [UInt8]?
    }

    public struct LiveComparison: Sendable {
        public var generation: UInt32
        /// The digest recorded for the live generation (hex), when one is.
        public var liveDigest: String?
        /// Records of the image compared, and of the live generation.
        public var imageRecords = 0
        public var liveRecords = 0
        /// Keys of the image the live generation lacks, live keys the image lacks, and keys
        /// with another value.
        public var missing = 0
        public var extra = 0
        public var changed = 0
        /// The first differences in table order, then key order (at most the limit asked for).
        public var differences: [LiveDifference] = []

        public var isEqual: Bool { missing == 0 && extra == 0 && changed == 0 }
        public var differenceCount: Int { missing + extra + changed }
    }

    /// Compares the live generation with a verified image.
    public func compareLive(with image: VerifiedImage, limit: Int = 20) throws(BPFError) -> LiveComparison {
        let config = try readConfig()
        let generation = config.activeGeneration
        var out = LiveComparison(generation: generation)
        out.liveDigest = try imageDigest(generation).map { Hex.bytes($0) }
        for table in ImageTable.allCases {
            let view = ImageTableView(header: image.header, bytes: image.bytes, table: table)
            out.imageRecords += view.count
            var live: [[UInt8]: Int] = [:]
            var dump: (keys: [UInt8], values: [UInt8], count: Int) = ([], [], 0)
            if let o = outer[table], let inner = try o.inner(generation) {
                dump = try inner.dump(keySize: view.keySize, valueSize: view.valueSize)
                live.reserveCapacity(dump.count)
                for i in 0..<dump.count { live[Array(dump.keys[(i * view.keySize)..<((i + 1) * view.keySize)])] = i }
            }
            out.liveRecords += dump.count
            func liveValue(_ i: Int) -> [UInt8] { Array(dump.values[(i * view.valueSize)..<((i + 1) * view.valueSize)]) }
            var found: [LiveDifference] = []
            for i in 0..<view.count {
                let key = view.key(at: i)
                guard let j = live.removeValue(forKey: key) else {
                    out.missing += 1
                    if found.count < limit { found.append(LiveDifference(table: table, key: key, live: nil, image: view.value(at: i))) }
                    continue
                }
                let value = view.value(at: i)
                let lv = liveValue(j)
                if lv != value {
                    out.changed += 1
                    if found.count < limit { found.append(LiveDifference(table: table, key: key, live: lv, image: value)) }
                }
            }
            out.extra += live.count
            let extras = live.keys.sorted { $0.lexicographicallyPrecedes($1) }.prefix(limit)
            found += extras.map { LiveDifference(table: table, key: $0, live: liveValue(live[$0] ?? 0), image: nil) }
            found.sort { $0.key.lexicographicallyPrecedes($1.key) }
            out.differences += found.prefix(max(0, limit - out.differences.count))
        }
        return out
    }
}
