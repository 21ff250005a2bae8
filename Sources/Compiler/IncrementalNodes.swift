import Manifests
import MapImage

/// A Node added, changed or removed, followed without a full compile: its record, its addresses'
/// records, and the ids of nodes and zones (IDSpace). A Node object decides an endpoint's node
/// only through an address of an endpoint that names no node: those services are planned again.
extension IncrementalCompiler {
    /// The records the change writes, and the services to plan again; the obstacle when only a
    /// full compile follows it.
    mutating func applyNode(_ name: String, _ node: Node?) -> Result<(RecordDelta, Set<ServiceRef>), Obstacle> {
        func fail(_ why: String) -> Result<(RecordDelta, Set<ServiceRef>), Obstacle> { .failure(Obstacle(reason: "Node \(name): \(why)")) }
        let old = nodeEntries[name]
        if old == nil && node == nil { return .success((RecordDelta(), [])) }
        if explicitNodeIDs || node?.meta.annotations["balancing.elf.io/nodeId"] != nil { return fail("nodes carry id annotations") }
        let new = node.map { NodeCatalogue.Entry(name: name, zone: NodeCatalogue.zone($0), addresses: $0.addresses, fromObject: true, explicitID: nil) }

        // Addresses: only those no other node claims move here.
        let oldAddresses = Set(old?.addresses.map(\.address) ?? []), newAddresses = Set(new?.addresses.map(\.address) ?? [])
        let lost = oldAddresses.subtracting(newAddresses), gained = newAddresses.subtracting(oldAddresses)
        var replan = Set<ServiceRef>()
        for a in lost.union(gained) { replan.formUnion(nodelessEndpoints[a]?.keys ?? [:].keys) }
        if let a = lost.first(where: { addressClaims[$0] != 1 }) { return fail("another node also has its address \(a)") }
        if let a = gained.first(where: { addressClaims[$0] != nil }) { return fail("another node also has its address \(a)") }

        var before: [ImageTable: RecordTable] = [:]
        if let old, let id = nodeIDs[name] { nodeRecords(old, id: id, into: &before) }

        // Its id, and its index for plans.
        switch (old, new) {
        case (nil, _?):
            guard let id = nodeSpace.add(name, hash: StableID.hash("node/\(name)")) else { return fail("its id would collide with another node's") }
            nodeIDs[name] = id
            knownNodes[name] = Int32(knownNames.count)
            knownNames.append(name)
            nodeIDByIndex.append(id)
        case (_?, nil):
            // The policies' references are theirs to drop (they are compiled again after this).
            let index = knownNodes[name] ?? -1
            let layerListings = layer.plan.endpointNodes.lazy.filter { $0 == index }.count
            let layerSets = layer.plan.sets.lazy.filter { $0.scope != .cluster && $0.scope != .zone && $0.scopeName == name }.count
            if (nodeListings[index] ?? 0) > layerListings { return fail("endpoints still name it") }
            if (setNodes[name] ?? 0) > layerSets { return fail("topology hints still name it") }
            guard nodeSpace.remove(name) else { return fail("another node's id was placed past its id") }
            nodeIDs[name] = nil
            knownNodes[name] = nil
        default:
            break
        }

        // Zones: a zone's id comes with its first node and goes with its last.
        if old?.zone != new?.zone {
            if let z = new?.zone {
                if zoneNodes[z] == nil {
                    if setZones[z] != nil { return fail("topology hints name its zone \(z), which had no node") }
                    guard let id = zoneSpace.add(z, hash: StableID.hash("zone/\(z)")) else { return fail("the id of its zone \(z) would collide") }
                    zoneIDs[z] = id
                }
                Self.count(&zoneNodes, z, +1)
            }
            if let z = old?.zone {
                Self.count(&zoneNodes, z, -1)
                if zoneNodes[z] == nil {
                    if setZones[z] != nil { return fail("topology hints name its zone \(z), which has no other node") }
                    guard zoneSpace.remove(z) else { return fail("another zone's id was placed past the id of \(z)") }
                    zoneIDs[z] = nil
                }
            }
        }

        for a in lost {
            addressClaims[a] = nil
            ownerOfAddress[a] = nil
        }
        for a in gained {
            addressClaims[a] = 1
            ownerOfAddress[a] = name
        }
        nodeEntries[name] = new
        var after: [ImageTable: RecordTable] = [:]
        if let new, let id = nodeIDs[name] { nodeRecords(new, id: id, into: &after) }
        return .success((ImageRecords.delta(from: before, to: after), replan))
    }

    /// A node's record and its addresses' records.
    func nodeRecords(_ e: NodeCatalogue.Entry, id: UInt32, into tables: inout [ImageTable: RecordTable]) {
        let n = ImageRecords.node(e.imageNode(id: id, zoneIDs: zoneIDs))
        tables[.nodes, default: [:]][n.key] = n.value
        for a in Set(e.addresses.map(\.address)) where ownerOfAddress[a] == e.name {
            let r = ImageRecords.nodeAddress(NodeAddress(address: a, nodeID: id))
            tables[.nodeAddresses, default: [:]][r.key] = r.value
        }
    }
}
