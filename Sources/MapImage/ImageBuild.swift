/// Why no image was written: contents beyond the datapath's capacity, or bytes the verifier
/// refuses (then it is a bug of the encoder or of the verifier: the two must agree).
public enum ImageBuildError: Error, Sendable, CustomStringConvertible {
    case capacity([CapacityProblem])
    case verification(ImageError)

    public var description: String {
        switch self {
        case .capacity(let problems):
            return problems.map(\.description).joined(separator: "\n")
        case .verification(let error):
            return "the encoded image does not pass verification (a bug in balancer; please report it): \(error)"
        }
    }
}

extension ImageDecoder {
    /// Every check `MapImage(bytes:)` makes (`verify`'s, and the whole metadata decoded), without
    /// building the tables' model: what a writer runs so that it never writes an image that
    /// `inspect`, `diff`, `resolve` or `load` would refuse.
    ///
    /// The tables and the metadata are checked side by side (they take about as long as each
    /// other on a large cluster); the errors are the ones `decode` would give.
    public static func verifyCompletely(_ bytes: [UInt8]) throws(ImageError) -> VerifiedImage {
        enum Part: Sendable {
            case tables(Result<ImageHeader, ImageError>)
            case metadata(Result<ImageMetadata, ImageError>)
        }
        let parts = concurrentMap(2) { i -> Part in
            if i == 0 {
                return .tables(Result { () throws(ImageError) in try decode(bytes, materialize: false, nodes: false).0 })
            }
            return .metadata(Result { () throws(ImageError) in
                let meta = try decodeLayout(bytes).sections[ImageTable.allCases.count]
                return try metadata(bytes, meta)
            })
        }
        guard case .tables(let tables) = parts[0], case .metadata(let metadata) = parts[1] else {
            throw ImageError("verification did not run")
        }
        let header = try tables.get()
        let m = try metadata.get()
        return VerifiedImage(header: header, bytes: bytes, nodes: m.nodes, clusters: m.clusters ?? [])
    }

    /// The metadata section decoded; its error as `decode` reports it.
    static func metadata(_ bytes: [UInt8], _ section: SectionInfo) throws(ImageError) -> ImageMetadata {
        do {
            return try ImageMetadata.decode(Array(bytes[section.offset..<(section.offset + section.length)]))
        } catch {
            // The decoder's message may quote the section's own (forged) bytes.
            throw ImageError("metadata is not valid: \(PrintableText.escape("\(error)"))", offset: section.offset)
        }
    }
}

extension ImageEncoder {
    /// The image of `contents`, checked against every capacity of the datapath before it is
    /// encoded and verified after (`ImageDecoder.verifyCompletely`, what `inspect` and `load`
    /// check): what `compile` writes. An image this returns is one every reader accepts.
    public static func encodeVerified(_ c: ImageContents) throws(ImageBuildError) -> [UInt8] {
        let bytes = try encodeChecked(c)
        try verifyEncoded(bytes)
        return bytes
    }

    /// The first half of `encodeVerified`: the capacity checks, then the encoding.
    public static func encodeChecked(_ c: ImageContents) throws(ImageBuildError) -> [UInt8] {
        let problems = ImageCapacity.check(c)
        guard problems.isEmpty else { throw .capacity(problems) }
        let sections = sections(c)
        if let meta = sections.last, meta.data.count > ImageCapacity.maxMetadataBytes {
            throw .capacity([CapacityProblem(subject: .metadata, count: meta.data.count, limit: ImageCapacity.maxMetadataBytes, constant: nil)])
        }
        return layout(sections)
    }

    /// The second half: the encoder's bytes verified as a reader verifies them.
    public static func verifyEncoded(_ bytes: [UInt8]) throws(ImageBuildError) {
        do {
            _ = try ImageDecoder.verifyCompletely(bytes)
        } catch {
            throw .verification(error)
        }
    }
}

// fuzz/build.sh compiles MapImage's sources alone, without the system layer; nothing it fuzzes
// writes files.
#if canImport(HostSystem)
import HostSystem

/// Image files: written only when they verify (reading one is HostSystem's FileContents.read).
public enum ImageFile {
    /// Why an image file was not written.
    public struct WriteError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): not written: \(reason)" }
    }

    /// Writes image bytes that pass `ImageDecoder.verifyCompletely`, atomically; refuses any
    /// other bytes, so no writer leaves a file that `inspect` or `load` would refuse.
    public static func writeImage(_ bytes: [UInt8], to path: String) throws(WriteError) {
        do {
            _ = try ImageDecoder.verifyCompletely(bytes)
        } catch {
            throw WriteError(path: path, reason: "the image does not pass verification: \(error)")
        }
        do {
            try FileContents.writeAtomically(bytes, to: path)
        } catch {
            throw WriteError(path: path, reason: error.description)
        }
    }
}
#endif
