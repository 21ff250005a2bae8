// The container's fixed layout (docs/image-format.md): the section kinds, the sizes and offsets
// every image shares, and what a verified header says.

/// Section kinds: the datapath tables (the values of `enum bl_table`) and the metadata.
public enum ImageTable: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case frontends = 1
    case vips = 2
    case nodeAddresses = 3
    case nodes = 4
    case sets = 5
    case slots = 6
    case members = 7
    case backends = 8
    case serviceCIDRs = 9
    case sourceRanges = 10

    public var description: String {
        switch self {
        case .frontends: "frontends"
        case .vips: "vips"
        case .nodeAddresses: "node_addrs"
        case .nodes: "nodes"
        case .sets: "sets"
        case .slots: "slots"
        case .members: "members"
        case .backends: "backends"
        case .serviceCIDRs: "service_cidrs"
        case .sourceRanges: "source_ranges"
        }
    }
}

/// The fixed layout of the container (docs/image-format.md).
public enum ImageLayout {
    public static let magic: [UInt8] = Array("BLIMAGE".utf8) + [0]
    public static let formatVersion: UInt16 = 1
    public static let headerSize = 64
    public static let sectionEntrySize = 32
    public static let metadataKind: UInt32 = 0x100
    static let alignment = 8

    /// Where each header field starts (docs/image-format.md, "Layout"). The encoder writes and
    /// the decoder reads the fields at these offsets, so the two cannot disagree.
    enum Header {
        static let magic = 0
        static let formatVersion = 8
        static let headerSize = 10
        static let abiVersion = 12
        static let sectionCount = 16
        static let flags = 20
        static let totalSize = 24
        static let digest = 32
        static let digestSize = 32
    }

    /// Where each field of a section table entry starts, from the entry's first byte.
    enum Entry {
        static let kind = 0
        static let keySize = 4
        static let valueSize = 6
        static let count = 8
        static let reserved = 12
        static let offset = 16
        static let length = 24
    }
}

/// What the header of a verified image says.
public struct ImageHeader: Sendable, Equatable {
    public var formatVersion: UInt16
    public var abiVersion: UInt32
    public var totalSize: Int
    public var digest: [UInt8]
    public var sections: [SectionInfo]

    public var digestHex: String { Hex.bytes(digest) }
}

public struct SectionInfo: Sendable, Equatable {
    public var kind: UInt32
    public var keySize: Int
    public var valueSize: Int
    public var count: Int
    public var offset: Int
    public var length: Int

    public var name: String {
        if kind == ImageLayout.metadataKind { return "metadata" }
        return ImageTable(rawValue: kind)?.description ?? "unknown(\(kind))"
    }
}
