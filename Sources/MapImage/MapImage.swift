/// An image whose container and tables are verified (ImageDecoder.verify) but not decoded into
/// the model: the loader writes `bytes`' record sections to the kernel as they are.
public struct VerifiedImage: Sendable {
    public var header: ImageHeader
    public var bytes: [UInt8]
    public var nodes: [NodeInfo]
    public var clusters: [ClusterInfo] = []

    public func nodeID(named name: String) throws(ResolverError) -> UInt32 {
        try NodeInfo.id(named: name, in: nodes)
    }

    /// The host's settings in this image's ids.
    public func place(_ settings: HostSettings) throws(ResolverError) -> HostPlacement {
        try settings.place(nodes: nodes, clusters: clusters)
    }
}

/// A decoded, fully verified image.
public struct MapImage: Sendable {
    public var header: ImageHeader
    public var contents: ImageContents
    public var bytes: [UInt8]

    /// Verifies everything (see ImageDecoder) and decodes.
    public init(bytes: [UInt8]) throws(ImageError) {
        let (header, contents) = try ImageDecoder.decode(bytes)
        self.header = header
        self.contents = contents
        self.bytes = bytes
    }

    public init(contents: ImageContents) {
        let bytes = ImageEncoder.encode(contents)
        self.bytes = bytes
        self.contents = contents
        // The encoder's own output always decodes; a failure here is a bug in one of the two.
        if let (header, decoded) = try? ImageDecoder.decode(bytes) {
            self.header = header
            self.contents = decoded
        } else {
            self.header = ImageHeader(formatVersion: ImageLayout.formatVersion, abiVersion: ABI.version, totalSize: bytes.count,
                                      digest: [], sections: [])
        }
    }
}
