import Dispatch
import FoundationEssentials
import Synchronization

// The input side's use of both cores: pieces decoded while the split goes on, and a plain
// parallel map (also the compiler's).

/// Pieces decoded on every core while the main thread is still splitting: the main thread
/// pushes, the workers (one per core) take them in order, and `finish` returns each piece's
/// decoder by its number.
final class EarlyPieces: Sendable {
    private struct Queue {
        var pieces: [(file: Int, chunk: ManifestChunk)] = []
        var next = 0
    }
    private let queue = Mutex(Queue())
    private let ready = DispatchSemaphore(value: 0)
    private let done = DispatchGroup()
    private let results = Mutex<[(Int, ChunkDecoder)]>([])
    private let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    init(_ decode: @Sendable @escaping (Int, ManifestChunk) -> ChunkDecoder) {
        for _ in 0..<workers {
            DispatchQueue.global().async(group: done) { [self] in
                var local: [(Int, ChunkDecoder)] = []
                while true {
                    ready.wait()
                    let taken: (Int, Int, ManifestChunk)? = queue.withLock { q in
                        guard q.next < q.pieces.count else { return nil }
                        q.next += 1
                        let p = q.pieces[q.next - 1]
                        return (q.next - 1, p.file, p.chunk)
                    }
                    guard let (n, file, chunk) = taken else { break }
                    local.append((n, decode(file, chunk)))
                }
                results.withLock { $0 += local }
            }
        }
    }

    /// Queues a piece; returns its number.
    func push(_ file: Int, _ chunk: ManifestChunk) -> Int {
        let n = queue.withLock { q in
            q.pieces.append((file, chunk))
            return q.pieces.count - 1
        }
        ready.signal()
        return n
    }

    /// Waits for the workers; the decoders by number (nil for none).
    func finish() -> [ChunkDecoder?] {
        for _ in 0..<workers { ready.signal() }
        done.wait()
        let count = queue.withLock { $0.pieces.count }
        var out = [ChunkDecoder?](repeating: nil, count: count)
        for (n, r) in results.withLock({ $0 }) { out[n] = r }
        return out
    }
}

/// Runs `body` for 0..<count on every core and returns the results in index order.
public func parallelMap<T: Sendable>(_ count: Int, _ body: @Sendable @escaping (Int) -> T) -> [T] {
    if count == 0 { return [] }
    let workers = min(count, max(1, ProcessInfo.processInfo.activeProcessorCount))
    if workers == 1 || count < 4 || onBackgroundThread { return (0..<count).map(body) }
    let next = Atomic<Int>(0)
    let slots = Mutex<[T?]>([T?](repeating: nil, count: count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        var local: [(Int, T)] = []
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { break }
            local.append((i, body(i)))
        }
        slots.withLock { s in for (i, v) in local { s[i] = v } }
    }
    return slots.withLock { $0.compactMap { $0 } }
}

// fuzz/build.sh compiles this module without the system layer (no background threads there).
#if canImport(HostSystem)
import HostSystem
private var onBackgroundThread: Bool { BackgroundThread.isSerial }
#else
private var onBackgroundThread: Bool { false }
#endif
