/// The objects of one in-memory file, decoded and kept: a watcher decodes an object once, when it
/// changes, and builds every later snapshot from what it kept (`InputLoader.snapshot(of:)`), the
/// snapshot `load(contents:)` gives for the same files, without decoding anything again.
public struct DecodedFile: Sendable {
    /// The file's pieces (documents, List items), each decoded, in file order.
    let pieces: [ChunkDecoder]

    /// Whether anything in it is an error (the file stops a compile).
    public var hasErrors: Bool { pieces.contains { $0.diagnostics.contains { $0.severity == .error } } }

    /// Its objects alone, for a compiler that follows single changes; nil when the file has an
    /// error (a full compile reports it).
    public var objects: Snapshot? {
        var builder = SnapshotBuilder()
        for p in pieces { builder.merge(p) }
        return try? builder.finish().0
    }
}

extension InputLoader {
    /// Decodes in-memory files (path, bytes), each on its own, on every core: what
    /// `load(contents:)` does before merging.
    public static func decodeEach(_ contents: [(path: String, bytes: [UInt8])]) -> [DecodedFile] {
        var chunks: [(file: Int, chunk: ManifestChunk)] = []
        for (i, (path, bytes)) in contents.enumerated() {
            for c in ManifestSplitter.split(bytes, file: path, format: ManifestReader.isJSON(bytes, file: path) ? .json : .yaml) {
                chunks.append((i, c))
            }
        }
        let pieces = chunks
        let results = parallelMap(pieces.count) { i -> ChunkDecoder in
            let (f, chunk) = pieces[i]
            var decoder = ChunkDecoder(chunk: chunk)
            let file = contents[f].bytes
            if let items = chunk.excluded {
                // A List's own members, its items cut out (they are chunks of their own); the
                // items blanked instead, keeping every position, only to report a problem.
                decoder.decode(Array(file[chunk.range.lowerBound..<items.lowerBound]) + Array(file[items.upperBound..<chunk.range.upperBound]),
                               positions: { ManifestSplitter.blank(file, chunk.range, except: items) })
            } else {
                decoder.decode(Array(file[chunk.range]))
            }
            return decoder
        }
        var files = [[ChunkDecoder]](repeating: [], count: contents.count)
        for (k, r) in results.enumerated() { files[pieces[k].file].append(r) }
        return files.map { DecodedFile(pieces: $0) }
    }

    /// The snapshot of decoded files, merged in the order given (duplicates across them settled as
    /// `load` settles them).
    public static func snapshot(of files: some Sequence<DecodedFile>) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        var builder = SnapshotBuilder()
        for f in files { for p in f.pieces { builder.merge(p) } }
        return try builder.finish()
    }
}
