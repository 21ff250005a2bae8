import Manifests
import MapImage

/// The backend registry: which sets list each address, under which nodes, and the id it holds.
/// Backend ids follow the full compile's dense rule (the registry keeps what it placed past what),
/// and a backend's record names the least node it is listed under.
extension IncrementalCompiler {
    /// A backend address as the registry sees it.
    struct BackendEntry: Sendable {
        /// The backend id; 0 while no set uses the address.
        var id: UInt32 = 0
        /// How many sets' members (over all plans) refer to a listing of this address.
        var inSets = 0
        /// Listings of the address (every plan endpoint), and how many under each known node.
        var listings = 0
        var nodes: [Int32: Int] = [:]
    }

    /// Adds (+1) or removes (-1) a plan's listings in the backend registry.
    mutating func list(_ plan: ServicePlan, _ sign: Int) {
        var inSet = [Bool](repeating: false, count: plan.endpoints.count)
        for s in plan.sets { for m in s.members { inSet[Int(m)] = true } }
        for (k, identity) in plan.endpoints.enumerated() {
            var e = backends[identity] ?? BackendEntry()
            e.listings += sign
            if inSet[k] { e.inSets += sign }
            let n = plan.endpointNodes[k]
            if n >= 0 {
                let c = (e.nodes[n] ?? 0) + sign
                e.nodes[n] = c == 0 ? nil : c
                Self.count(&nodeListings, n, sign)
            }
            backends[identity] = e
        }
        for s in plan.sets {
            switch s.scope {
            case .cluster, .serving, .inCluster, .outOfCluster: break
            case .zone: Self.count(&setZones, s.scopeName, sign)
            case .node, .local, .gate: Self.count(&setNodes, s.scopeName, sign)
            }
        }
    }

    /// The node a backend's record names: the least node name it is listed under.
    func leastNode(_ e: BackendEntry) -> Int32 {
        e.nodes.keys.min { knownNames[Int($0)] < knownNames[Int($1)] } ?? -1
    }

    func backendRecord(_ identity: BackendIdentity, _ e: BackendEntry) -> (key: [UInt8], value: [UInt8]) {
        let node = leastNode(e)
        return ImageRecords.backend(Backend(id: e.id, address: identity.address, proto: identity.proto,
                                            nodeID: node >= 0 ? nodeIDByIndex[Int(node)] : 0))
    }

    /// Moves the replanned plans' listings from the old plans to the new ones and returns the
    /// backend records that change: removed backends free their ids first, then new ones take
    /// theirs (the order the dense rule would meet them in does not matter when no placement
    /// passed over either), and a backend whose least node changed is written again.
    mutating func settleBackends(_ replanned: [(ref: ServiceRef, old: ServicePlan, new: ServicePlan)]) -> Result<RecordDelta, Obstacle> {
        var touched = Set<BackendIdentity>()
        for r in replanned {
            touched.formUnion(r.old.endpoints)
            touched.formUnion(r.new.endpoints)
        }
        var was: [BackendIdentity: BackendEntry] = [:]
        for t in touched { was[t] = backends[t] }
        for r in replanned {
            list(r.old, -1)
            list(r.new, +1)
        }

        var delta = RecordDelta()
        var added: [BackendIdentity] = []
        for identity in touched.sorted() {
            guard var e = backends[identity] else { continue }
            let previous = was[identity]
            if e.inSets == 0, e.id != 0 {
                if let blocker = displaced.first(where: { $0.value.from <= e.id && e.id < $0.value.to }) {
                    return .failure(Obstacle(reason: "backend id \(e.id) was passed over by \(blocker.key.address)"))
                }
                delta.set(.backends, key: backendRecord(identity, e).key, value: nil)
                idOwner[e.id] = nil
                displaced[identity] = nil
                e.id = 0
            } else if e.inSets > 0, e.id == 0 {
                added.append(identity)
            } else if e.inSets > 0, let previous, leastNode(previous) != leastNode(e) {
                let r = backendRecord(identity, e)
                delta.set(.backends, key: r.key, value: r.value)
            }
            if e.listings == 0 && e.id == 0 { backends[identity] = nil } else { backends[identity] = e }
        }
        for identity in added {
            let h = max(identity.stableHash, 1)
            if let other = idOwner[h] { return .failure(Obstacle(reason: "backend \(identity.address) hashes to id \(h), which \(other.address) has")) }
            idOwner[h] = identity
            backends[identity]?.id = h
            if let e = backends[identity] {
                let r = backendRecord(identity, e)
                delta.set(.backends, key: r.key, value: r.value)
            }
        }

        return .success(delta)
    }
}
