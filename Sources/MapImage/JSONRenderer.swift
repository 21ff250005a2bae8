import FoundationEssentials

/// The JSON form of `inspect`: the same content as the text form, structured.
public enum JSONRenderer {
    struct Document: Encodable {
        var format: UInt16
        var abi: UInt32
        var size: Int
        var sha256: String
        var tables: [String: Int]
        var metadata: ImageMetadata
        var frontends: [FrontendView]
        var vips: [VIPView]
        var nodeAddresses: [NodeAddrView]
        var nodes: [NodeView]
        var sets: [SetView]
        var backends: [BackendView]
        var serviceCIDRs: [String]
        var sourceRanges: [SourceRangeView]
    }

    struct SourceRangeView: Encodable {
        var range: String
        var service: UInt32
        var serviceName: String
    }

    struct FrontendView: Encodable {
        var frontend: String
        var address: String
        var port: UInt16
        var `protocol`: String
        /// The cluster whose clients find this frontend first (a NodePort: whose nodes answer).
        var cluster: String?
        var id: UInt32
        var rules: [RuleView]
    }

    struct RuleView: Encodable {
        var origin: String
        var kind: String
        var action: String
        var group: UInt32
        var groupName: String
        var owner: UInt32
        var flags: [String]
        var affinityTimeout: UInt32?
        var rateLimit: UInt32?
        var nodePort: UInt16?
        var cluster: String?
    }

    struct VIPView: Encodable {
        var address: String
        var service: UInt32
        var serviceName: String
        var rejectUnknownPort: Bool
        /// Whose clients its refusal of unknown ports is for (absent: every client).
        var cluster: String?
    }

    struct NodeAddrView: Encodable {
        var address: String
        var node: UInt32
        var nodeName: String
        var cluster: String?
    }

    struct NodeView: Encodable {
        var id: UInt32
        var name: String
        var zone: UInt32
        var zoneName: String?
        var ipv4: String?
        var ipv6: String?
        var object: Bool
    }

    struct SetView: Encodable {
        var group: UInt32
        var groupName: String
        var scope: String
        var scopeID: UInt32
        var scopeName: String
        var terminating: Bool
        var backends: [String]
        var backendIDs: [UInt32]
    }

    struct BackendView: Encodable {
        var id: UInt32
        var address: String
        var `protocol`: String
        var node: UInt32
        var nodeName: String
        var cluster: String?
    }

    public static func render(_ image: MapImage) -> String {
        let c = image.contents
        let names = ImageNames(c)
        let doc = Document(
            format: image.header.formatVersion, abi: image.header.abiVersion, size: image.header.totalSize,
            sha256: image.header.digestHex,
            tables: Dictionary(firstWins: image.header.sections.map { ($0.name, $0.count) }),
            metadata: c.metadata,
            frontends: c.frontends.map { f in
                FrontendView(frontend: names.frontend(f.key), address: f.key.isNodePortWildcard ? "*" : f.key.address.description,
                             port: f.key.port, protocol: f.key.proto.description,
                             cluster: f.key.cluster == 0 ? nil : names.cluster(f.key.cluster), id: f.id,
                             rules: f.rules.map { r in
                                 RuleView(origin: r.origin.description, kind: r.kind.description, action: r.action.description,
                                          group: r.groupID, groupName: names.group(r.groupID), owner: r.ownerID, flags: r.flags.names,
                                          affinityTimeout: r.flags.contains(.affinity) ? r.affinityTimeout : nil,
                                          rateLimit: r.rateLimit == 0 ? nil : r.rateLimit, nodePort: r.nodePort == 0 ? nil : r.nodePort,
                                          cluster: r.cluster == 0 ? nil : names.cluster(r.cluster))
                             })
            },
            vips: c.vips.map { VIPView(address: $0.address.description, service: $0.serviceID,
                                       serviceName: names.services[$0.serviceID]?.qualifiedName ?? "",
                                       rejectUnknownPort: $0.flags.contains(.rejectUnknownPort),
                                       cluster: $0.cluster == 0 ? nil : names.cluster($0.cluster)) },
            nodeAddresses: c.nodeAddresses.map { NodeAddrView(address: $0.address.description, node: $0.nodeID, nodeName: names.node($0.nodeID),
                                                              cluster: $0.cluster == 0 ? nil : names.cluster($0.cluster)) },
            nodes: c.nodes.map { NodeView(id: $0.id, name: names.node($0.id), zone: $0.zoneID, zoneName: names.zones[$0.zoneID],
                                          ipv4: $0.ipv4?.description, ipv6: $0.ipv6?.description, object: $0.flags.contains(.fromObject)) },
            sets: c.sets.map { s in
                SetView(group: s.key.groupID, groupName: names.group(s.key.groupID), scope: s.key.scope.description,
                        scopeID: s.key.scopeID, scopeName: names.scope(s.key), terminating: s.flags.contains(.terminating),
                        backends: s.backends.map { names.backend($0) }, backendIDs: s.backends)
            },
            backends: c.backends.map { BackendView(id: $0.id, address: $0.address.description, protocol: $0.proto.description,
                                                   node: $0.nodeID, nodeName: names.node($0.nodeID),
                                                   cluster: $0.cluster == 0 ? nil : names.cluster($0.cluster)) },
            serviceCIDRs: c.serviceCIDRs.map(\.description),
            sourceRanges: c.sourceRanges.map { SourceRangeView(range: $0.prefix.description, service: $0.ownerID,
                                                               serviceName: names.services[$0.ownerID]?.qualifiedName ?? "") })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(doc) else { return "{}\n" }
        return PrintableText.escapeJSON(String(decoding: data, as: UTF8.self)) + "\n"
    }
}
