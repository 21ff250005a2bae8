import MapImage

// The write of the standby generation and its flip (see GenerationWriter).
extension GenerationWriter.Core {
    /// Brings the standby generation to `target` and flips it live. `write`: the records
    /// the standby lacks (nil: its content is unknown, every table is filled fresh).
    /// `verified`: waits for the image's verification and answers the node's id (nil when
    /// there is nothing to verify); called after the fresh maps are filled and before
    /// anything a program or another loader can see is written.
    mutating func writeStandby(target: RecordState, write: RecordDelta?, digest: [UInt8]?, active: UInt32, phases: [(String, Double)],
                               verified: () throws(LoadError) -> HostPlacement?) throws(LoadError) -> Datapath.LoadReport {
        var phases = phases
        let standby = active ^ 1
        // Fresh maps for unknown content and for tables that outgrow their maps.
        var fresh: [ImageTable] = []
        for table in ImageTable.allCases {
            let needed = target.counts[table] ?? 0
            if write == nil || ids[standby]?[table] == nil || needed > (capacity[standby]?[table] ?? 0) { fresh.append(table) }
        }
        var written = 0, deleted = 0
        // Filled while the image is verified: no program can reach these maps yet.
        var filled: Datapath.Standby?
        if !fresh.isEmpty {
            let sources = fresh.map { table -> Datapath.FillSource in
                let count = target.counts[table] ?? 0
                // A whole image's section as it is (no copy of a large image's records).
                let unchanged = target.sinceBase.changes[table]?.isEmpty ?? true
                return Datapath.FillSource(table: table, keySize: ABI.keySize(table), valueSize: ABI.valueSize(table), count: count,
                                           capacity: capacityFor(table, count: count),
                                           records: unchanged ? target.view(table).records : target.records(table)[...])
            }
            do { filled = try datapath.fill(generation: standby, sources: sources) } catch { throw .bpf(error) }
            phases += filled?.phases ?? []
            written += sources.reduce(0) { $0 + $1.count }
        }
        var t = Datapath.now()
        if let placement = try verified() {
            self.placement = placement
            phases.append(("wait for verification", Datapath.now() - t))
        }
        t = Datapath.now()
        // No reader may still be in the standby generation.
        do { try waitForBarrier(generation: standby) } catch { throw .bpf(error) }
        phases.append(("wait for grace period", Datapath.now() - t))
        do throws(BPFError) {
            try datapath.setGenerationRecord(standby, Datapath.filling)
            if let filled {
                let p = Datapath.now()
                try datapath.backend.setInners(filled.inners.compactMap { (table, inner) in datapath.outer[table].map { ($0, standby, inner) } })
                phases.append(("publish", Datapath.now() - p))
            }
            if let write {
                var deletes = 0.0, updates = 0.0
                for table in ImageTable.allCases where !fresh.contains(table) {
                    guard let changes = write.changes[table], !changes.isEmpty, let o = datapath.outer[table] else { continue }
                    guard let inner = try o.inner(standby) else {
                        throw BPFError("write", "\(o.name)[\(standby)]", message: "the standby generation has no map")
                    }
                    var dkeys: [UInt8] = [], ukeys: [UInt8] = [], uvalues: [UInt8] = []
                    for (key, value) in changes {
                        if let value {
                            ukeys += key
                            uvalues += value
                        } else {
                            dkeys += key
                        }
                    }
                    // Deletes first: the map never holds more than the new count.
                    let d0 = Datapath.now()
                    try inner.deleteBatch(keys: dkeys, keySize: ABI.keySize(table))
                    let d1 = Datapath.now()
                    try inner.updateBatch(keys: ukeys, values: uvalues, keySize: ABI.keySize(table), valueSize: ABI.valueSize(table))
                    updates += Datapath.now() - d1
                    deletes += d1 - d0
                    deleted += dkeys.count / ABI.keySize(table)
                    written += ukeys.count / ABI.keySize(table)
                }
                phases.append(("delete", deletes))
                phases.append(("update", updates))
            }
            t = Datapath.now()
            try datapath.setGenerationRecord(standby, digest ?? Datapath.unknownDigest)
            // The flip: one update of one array element.
            try datapath.writeConfig(Datapath.Config(activeGeneration: standby, placement: placement))
            phases.append(("flip", Datapath.now() - t))
        } catch {
            // The standby is marked filling (or holds records of an unfinished write): unknown.
            pending = nil
            ids[standby] = nil
            capacity[standby] = nil
            throw .bpf(error)
        }
        // Readers that read the old active generation leave within a grace period; it runs
        // in the background until the next write to that generation.
        startBarrier(generation: active)
        live = standby
        do { try remember(generation: standby) } catch { throw .bpf(error) }
        return Datapath.LoadReport(generation: standby, digestHex: digest.map { Hex.bytes($0) } ?? "", records: [:],
                                   phases: phases, method: fresh.count == ImageTable.allCases.count ? .fresh : .delta,
                                   written: written, deleted: deleted,
                                   refilled: fresh.count == ImageTable.allCases.count ? [] : fresh.map(\.description),
                                   gracePeriod: lastGracePeriod)
    }

    func capacityFor(_ table: ImageTable, count: Int) -> Int {
        let wanted = count + Int(Double(count) * headroom) + Self.slack
        return max(count, min(wanted, ABI.maxEntries(table)), 1)
    }
}
