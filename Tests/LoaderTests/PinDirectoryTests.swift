import Foundation
@testable import Loader
import Testing

/// The pin directory's guard on ordinary directories (the mode and owner checks do not depend on
/// the file system; e2e/hostile-image.sh refuses a writable bpffs pin directory on a real datapath).
@Suite struct PinDirectoryTests {
    @Test func writableOrForeignDirectoriesAreRefused() throws {
        let dir = NSTemporaryDirectory() + "balancer-pindir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/maps", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o700)
        chmod(dir + "/maps", 0o700)
        #expect(PinDirectory.unsafeReason(dir) == nil)
        chmod(dir, 0o755)
        #expect(PinDirectory.unsafeReason(dir) == nil, "readable is fine: only writing swaps maps")
        chmod(dir, 0o1777)
        #expect(PinDirectory.unsafeReason(dir)?.contains("is writable by its group and others (mode 1777)") == true)
        chmod(dir, 0o700)
        chmod(dir + "/maps", 0o770)
        #expect(PinDirectory.unsafeReason(dir)?.hasPrefix("\(dir)/maps is writable by its group (mode 770)") == true, "\(PinDirectory.unsafeReason(dir) ?? "")")
        chmod(dir + "/maps", 0o700)
        if geteuid() == 0 {
            chown(dir + "/maps", 65534, 65534)
            #expect(PinDirectory.unsafeReason(dir)?.contains("is owned by uid 65534, neither root nor this user") == true)
        }
    }
}
