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
    /// `load(contents:)` does before merging. The split of a large file is itself a scan of every
    /// byte: pieces are decoded as it finds them.
    public static func decodeEach(_ contents: [(path: String, bytes: [UInt8])]) -> [DecodedFile] {
        @Sendable func decode(_ f: Int, _ chunk: ManifestChunk) -> ChunkDecoder {
            var decoder = ChunkDecoder(chunk: chunk)
            let file = contents[f].bytes
            if let items = chunk.excluded {
                // A List's own members, its items cut out (they are chunks of their own); the
                // items blanked instead, keeping every position, only to report a problem.
                decoder.decode((Array(file[chunk.range.lowerBound..<items.lowerBound]) + Array(file[items.upperBound..<chunk.range.upperBound]))[...],
                               positions: { ManifestSplitter.blank(file, chunk.range, except: items) })
            } else {
                decoder.decode(file[chunk.range])
            }
            return decoder
        }
        let stream = EarlyPieces(decode)
        var chunks: [(file: Int, chunk: ManifestChunk)] = []
        /// (file, position) of each piece handed out early → its number in the stream.
        var earlyNumbers: [Int: [Int: Int]] = [:]
        for (i, (path, bytes)) in contents.enumerated() {
            let split = ManifestSplitter.split(bytes, file: path, format: ManifestReader.isJSON(bytes, file: path) ? .json : .yaml) { k, chunk in
                earlyNumbers[i, default: [:]][k] = stream.push(i, chunk)
            }
            for c in split { chunks.append((i, c)) }
        }
        let decodedEarly = stream.finish()
        // The pieces the split did not hand out, or handed out differently than it ended.
        var late: [Int] = []
        var results = [ChunkDecoder?](repeating: nil, count: chunks.count)
        var position = 0, previousFile = -1
        for (n, (f, chunk)) in chunks.enumerated() {
            position = f == previousFile ? position + 1 : 0
            previousFile = f
            if let e = earlyNumbers[f]?[position], let r = decodedEarly[e], r.chunk == chunk {
                results[n] = r
            } else {
                late.append(n)
            }
        }
        let pieces = chunks, lateIndices = late
        let rest = parallelMap(lateIndices.count) { decode(pieces[lateIndices[$0]].file, pieces[lateIndices[$0]].chunk) }
        for (k, n) in late.enumerated() { results[n] = rest[k] }
        var files = [[ChunkDecoder]](repeating: [], count: contents.count)
        for (n, r) in results.enumerated() { if let r { files[chunks[n].file].append(r) } }
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
