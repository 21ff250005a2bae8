import CHostSystem

/// Work that must never take a core from the work that cannot wait: the watcher's background
/// verification (a full compile, seconds of CPU at scale) beside the deltas that make changes live
/// in milliseconds. On 2 cores, a verification at normal priority using both halved the speed of
/// a burst of changes that arrived meanwhile.
public enum BackgroundThread {
    /// Runs `body` on a new thread at the lowest priority (nice 19, that thread only), where
    /// parallel maps run serially (`isSerial`): one core at most, and only what the others leave.
    /// False when no thread could be made (the caller runs the work some other way).
    public static func run(_ body: @Sendable @escaping () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let started = chost_spawn_background({ raw in
            guard let raw else { return }
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
        }, box)
        if started != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            return false
        }
        return true
    }

    /// Whether this thread is one `run` made: parallel work on it stays on it.
    public static var isSerial: Bool { chost_thread_is_serial() != 0 }

    private final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @Sendable @escaping () -> Void) { self.body = body }
    }
}
