import Compiler
import Glibc
import HostSystem
import Manifests
import Synchronization
import Testing

/// The watcher's background verification runs on a thread of its own: lowest priority, parallel
/// maps kept on it, and the compile it runs there gives the same image.
@Suite struct BackgroundThreadTests {
    @Test func runsSeriallyAtTheLowestPriority() async throws {
        #expect(!BackgroundThread.isSerial)
        let seen = Mutex<(serial: Bool, nice: Int32, threads: Set<UInt64>)?>(nil)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let started = BackgroundThread.run {
                errno = 0
                let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)  // Linux: the calling thread
                // A parallel map on this thread stays on it.
                let threads = Set(parallelMap(64) { _ in UInt64(pthread_self()) })
                seen.withLock { $0 = (BackgroundThread.isSerial, nice, threads) }
                done.resume()
            }
            #expect(started)
        }
        let s = try #require(seen.withLock { $0 })
        #expect(s.serial && s.nice == 19 && s.threads.count == 1, "\(s)")
    }
}
