import Manifests
import MapImage

/// A Service added, changed or deleted, followed without a full compile.
extension IncrementalCompiler {
    /// Why a change cannot be followed here (a full compile follows it).
    struct Obstacle: Error {
        var reason: String
    }

    /// Keeps, takes or frees the service's ids (service, groups, frontends), moves its claims on
    /// frontends and cluster IPs, and plans it again. The old plan's records are added to
    /// `before` first, while the ids and winners they were written with still hold. nil: the
    /// service is in the image neither before nor after.
    mutating func replanService(_ ref: ServiceRef, name: String, previous: Service?, before: inout [ImageTable: RecordTable])
        -> Result<(ref: ServiceRef, old: ServicePlan, new: ServicePlan)?, Obstacle> {
        func fail(_ why: String) -> Result<(ref: ServiceRef, old: ServicePlan, new: ServicePlan)?, Obstacle> {
            .failure(Obstacle(reason: "Service \(name): \(why)"))
        }
        let current = services[ref]
        if previous == nil && current == nil { return .success(nil) }
        let old = plans[ref]?.plan ?? ServicePlan(name: name, precedence: ServiceCompiler.ServicePrecedence(timestamp: "", name: name))
        records(old, into: &before)

        let annotation = "balancing.elf.io/serviceId"
        switch (previous, current) {
        case (nil, let svc?):
            if explicitServiceIDs || svc.meta.annotations[annotation] != nil { return fail("added while services carry id annotations") }
            guard let id = serviceSpace.add(name, hash: ServiceCompiler.serviceHash(ref.namespace, ref.name)) else {
                return fail("its id would collide with another service's")
            }
            serviceIDs[name] = id
        case (let was?, let svc?):
            if was.meta.annotations[annotation] != svc.meta.annotations[annotation] { return fail("its id annotation changed") }
        case (_?, nil):
            if explicitServiceIDs { return fail("deleted while services carry id annotations") }
            guard serviceSpace.remove(name) else { return fail("another service's id was placed past its id") }
            serviceIDs[name] = nil
        case (nil, nil):
            return .success(nil)
        }

        let oldGroups = previous.map(ServiceCompiler.groupIdentities) ?? []
        let newGroups = current.map(ServiceCompiler.groupIdentities) ?? []
        for g in Set(oldGroups).subtracting(newGroups) where !groupSpace.remove(g) {
            return fail("another group's id was placed past the id of its group \(g.port)/\(g.proto)/\(g.family)")
        }
        var groupIDs: [UInt32] = []
        for g in newGroups {
            guard let id = groupSpace.add(g, hash: g.stableHash), !layer.groupIDs.contains(id) else {
                return fail("the id of its group \(g.port)/\(g.proto)/\(g.family) would collide")
            }
            groupIDs.append(id)
        }

        var new = ServicePlan(name: name, precedence: old.precedence)
        if let svc = current {
            new = ServiceCompiler.plan(svc, serviceIDs: serviceIDs, groupIDs: groupIDs[...], slices: [ref: slicesOf(ref)],
                                       ownerOfAddress: ownerOfAddress, knownNodes: knownNodes, knownNames: knownNames,
                                           options: options)
        }
        if let reason = obstacle(old, new) { return .failure(Obstacle(reason: reason)) }

        // Claims: only frontends and cluster IPs no other service or policy claims move here.
        let newKeys = new.frontends.map(\.0)
        let kept = Set(newKeys)
        if kept.count != newKeys.count { return fail("it claims a frontend twice") }
        let oldKeys = Set(old.frontends.map(\.0))
        let removed = oldKeys.subtracting(kept), added = kept.subtracting(oldKeys)
        if let k = removed.union(added).first(where: { policyClaimed.contains($0) }) { return fail("a policy also claims \(k)") }
        if let k = removed.first(where: { frontendClaims[$0] != 1 }) { return fail("another service also claims \(k)") }
        if let k = added.first(where: { frontendClaims[$0] != nil }) { return fail("another service also claims \(k)") }
        let oldVIPs = Set(old.vips.map(\.address)), newVIPs = Set(new.vips.map(\.address))
        if newVIPs.count != new.vips.count { return fail("it claims a cluster IP twice") }
        let lostVIPs = oldVIPs.subtracting(newVIPs), gainedVIPs = newVIPs.subtracting(oldVIPs)
        if let a = lostVIPs.first(where: { vipClaims[$0] != 1 }) { return fail("another service also claims cluster IP \(a)") }
        if let a = gainedVIPs.first(where: { vipClaims[$0] != nil }) { return fail("another service also claims cluster IP \(a)") }
        if old.precedence != new.precedence, oldKeys.contains(where: { frontendClaims[$0] != 1 }) || oldVIPs.contains(where: { vipClaims[$0] != 1 }) {
            return fail("its precedence in a conflict changed")
        }

        for k in removed {
            guard frontendSpace.remove(k) else { return fail("another frontend's id was placed past the id of \(k)") }
            frontendClaims[k] = nil
            frontendWinner[k] = nil
        }
        for k in added {
            guard frontendSpace.add(k, hash: k.stableHash) != nil else { return fail("the id of frontend \(k) would collide") }
            frontendClaims[k] = 1
            frontendWinner[k] = name
        }
        for a in lostVIPs {
            vipClaims[a] = nil
            vipWinner[a] = nil
        }
        for a in gainedVIPs {
            vipClaims[a] = 1
            vipWinner[a] = name
        }
        plans[ref] = current == nil ? nil : (new, groupIDs)
        return .success((ref, old, new))
    }

    /// A service's slices, in name order (as the full compile merges them).
    func slicesOf(_ ref: ServiceRef) -> [EndpointSlice] {
        (slicesOfService[ref] ?? []).compactMap { slices[$0] }.sorted { $0.meta.name < $1.meta.name }
    }
}

/// One object changed, as a watcher hands it to the incremental compiler.
public struct ObjectChange: Sendable {
    public var kind: String
    public var namespace: String
    public var name: String
    /// What the object decodes to now (one object); nil: deleted.
    public var objects: Snapshot?

    public init(kind: String, namespace: String, name: String, objects: Snapshot?) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.objects = objects
    }
}
