import Dispatch
import Synchronization

/// Runs `body` for 0..<count on every core (on a background thread's own core only); results in
/// index order.
func concurrentMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    if onBackgroundThread { return (0..<count).map(body) }
    let slots = Mutex<[T?]>([T?](repeating: nil, count: count))
    DispatchQueue.concurrentPerform(iterations: count) { i in
        let v = body(i)
        slots.withLock { $0[i] = v }
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
