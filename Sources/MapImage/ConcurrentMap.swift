import Dispatch
import Synchronization

/// Runs `body` for 0..<count on every core; results in index order.
func concurrentMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    let slots = Mutex<[T?]>([T?](repeating: nil, count: count))
    DispatchQueue.concurrentPerform(iterations: count) { i in
        let v = body(i)
        slots.withLock { $0[i] = v }
    }
    return slots.withLock { $0.compactMap { $0 } }
}
