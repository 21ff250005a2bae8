import CBalancerABI

/// A bound of the datapath that an image's contents exceed. The verifier (ImageDecoder) refuses
/// an image past any of these, and the loader could not hold it; `ImageCapacity` finds them
/// from the contents before anything is encoded, so the compiler can say which table overflows,
/// by how much, and which constant to raise.
public struct CapacityProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Subject: Sendable, Equatable {
        /// A table holds more records than its maps (`BL_MAX_<TABLE>`).
        case table(ImageTable)
        /// One backend set holds more backends than a set can (its slots, members and distinct
        /// backends all count against their tables).
        case set(SetKey)
        /// A frontend with no rule or more than `BL_MAX_RULES`.
        case frontendRules(FrontendKey)
        /// The metadata section is longer than its 32-bit length field.
        case metadata
    }

    public var subject: Subject
    public var count: Int
    public var limit: Int
    /// The constant of bpf/include/balancer_abi.h that sets `limit` (nil: the format's own).
    public var constant: String?

    public init(subject: Subject, count: Int, limit: Int, constant: String?) {
        self.subject = subject
        self.count = count
        self.limit = limit
        self.constant = constant
    }

    /// Where the limit comes from and what to do about it.
    public var remedy: String {
        guard let constant else { return "a limit of the image format" }
        return "\(constant) in \(ImageCapacity.header); raise it and rebuild balancer (swift build compiles the datapath with it)"
    }

    public var description: String {
        switch subject {
        case .table(let t):
            return "\(t): \(count) records exceed the datapath's capacity of \(limit) (\(remedy))"
        case .set(let key):
            return "a backend set (group \(key.groupID), scope \(key.scope)) holds \(count) backends; a set holds at most \(limit) (\(remedy))"
        case .frontendRules(let key):
            return "frontend \(key) has \(count) rules; a frontend holds 1 to \(limit) (\(remedy))"
        case .metadata:
            return "metadata: \(count) bytes exceed the section's limit of \(limit) bytes (\(remedy))"
        }
    }
}

/// The capacities an image must fit, as the datapath header defines them.
public enum ImageCapacity {
    public static let header = "bpf/include/balancer_abi.h"

    /// The header's name for a table's capacity.
    public static func constant(_ table: ImageTable) -> String {
        switch table {
        case .frontends: "BL_MAX_FRONTENDS"
        case .vips: "BL_MAX_VIPS"
        case .nodeAddresses: "BL_MAX_NODE_ADDRS"
        case .nodes: "BL_MAX_NODES"
        case .sets: "BL_MAX_SETS"
        case .slots: "BL_MAX_SLOTS"
        case .members: "BL_MAX_MEMBERS"
        case .backends: "BL_MAX_BACKENDS"
        case .serviceCIDRs: "BL_MAX_SERVICE_CIDRS"
        case .sourceRanges: "BL_MAX_SOURCE_RANGES"
        }
    }

    /// A set of n backends takes n slots, n members and n distinct backends, so the smallest
    /// of those tables bounds one set.
    public static var maxSetSize: (limit: Int, table: ImageTable) {
        let tables: [ImageTable] = [.backends, .slots, .members]
        let t = tables.min { ABI.maxEntries($0) < ABI.maxEntries($1) } ?? .backends
        return (ABI.maxEntries(t), t)
    }

    public static let maxRules = Int(BL_MAX_RULES)
    /// The section table stores a section's length in bytes as the record count, 32 bits.
    public static let maxMetadataBytes = Int(UInt32.max)

    /// Record counts against the tables' capacities: a pure function of the counts.
    public static func check(counts: [ImageTable: Int]) -> [CapacityProblem] {
        ImageTable.allCases.compactMap { t in
            let n = counts[t] ?? 0
            let limit = ABI.maxEntries(t)
            return n > limit ? CapacityProblem(subject: .table(t), count: n, limit: limit, constant: constant(t)) : nil
        }
    }

    /// The records each table of `contents` would get.
    public static func counts(_ c: ImageContents) -> [ImageTable: Int] {
        let slots = c.sets.reduce(0) { $0 + $1.backends.count }
        return [.frontends: c.frontends.count, .vips: c.vips.count, .nodeAddresses: c.nodeAddresses.count, .nodes: c.nodes.count,
                .sets: c.sets.count, .slots: slots, .members: slots, .backends: c.backends.count, .serviceCIDRs: Set(c.serviceCIDRs).count,
                .sourceRanges: Set(c.sourceRanges).count]
    }

    /// Every capacity `contents` exceed: tables, then each oversized set, then each frontend
    /// whose rules do not fit. Empty when the image fits. Linear in the number of sets and
    /// frontends.
    public static func check(_ c: ImageContents) -> [CapacityProblem] {
        var problems = check(counts: counts(c))
        let (setLimit, setTable) = maxSetSize
        for s in c.sets where s.backends.count > setLimit {
            problems.append(CapacityProblem(subject: .set(s.key), count: s.backends.count, limit: setLimit, constant: constant(setTable)))
        }
        for f in c.frontends where f.rules.isEmpty || f.rules.count > maxRules {
            problems.append(CapacityProblem(subject: .frontendRules(f.key), count: f.rules.count, limit: maxRules, constant: "BL_MAX_RULES"))
        }
        return problems
    }
}
