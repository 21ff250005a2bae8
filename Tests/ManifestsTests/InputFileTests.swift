import Dispatch
import Foundation
import Manifests
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Trees of manifests hold what git and volume mounts put there. These cases need files that
/// cannot be committed (FIFOs, sockets, links to devices), so they are made here.
@Suite(.serialized) final class InputFileTests {
    let dir: String

    init() throws {
        var template = Array("/tmp/balancer-inputs-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        dir = try #require(made.map { String(cString: $0) })
    }

    deinit {
        chmod(dir + "/closed", 0o755)
        try? FileManager.default.removeItem(atPath: dir)
    }

    static let service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: default
        spec:
          clusterIP: 10.96.0.10
          ports:
          - port: 80
            protocol: TCP

        """

    func write(_ name: String, _ text: String = service) throws {
        try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
    }

    /// Runs `body` on another thread and fails instead of hanging when it blocks.
    func withDeadline<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () -> T) -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Thread.detachNewThread {
            box.value = body()
            done.signal()
        }
        return done.wait(timeout: .now() + .seconds(seconds)) == .success ? box.value : nil
    }

    func load(_ paths: [String], limits: InputLimits = InputLimits()) -> Result<(Snapshot, [Diagnostic]), CompileFailure> {
        Result { () throws(CompileFailure) in try InputLoader.load(paths: paths, limits: limits) }
    }

    @Test func nonRegularEntriesAreSkippedWithAWarning() throws {
        try write("svc.yaml")
        #expect(mkfifo(dir + "/pipe.yaml", 0o644) == 0)
        #expect(symlink("/dev/zero", dir + "/zero.yaml") == 0)
        let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(sock) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array((dir + "/socket.json").utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, c) in path.enumerated() where i < raw.count { raw[i] = UInt8(bitPattern: c) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        let dir = self.dir
        let result = try #require(withDeadline(20) { Self.describe(InputLoader.self, dir) }, "loading a tree with a FIFO blocked")
        #expect(result.contains("accepted: 1 Service"), "\(result)")
        #expect(result.contains("pipe.yaml: warning: skipped: a FIFO, not a regular file"), "\(result)")
        #expect(result.contains("zero.yaml: warning: skipped: a character device, not a regular file"), "\(result)")
        #expect(result.contains("socket.json: warning: skipped: a socket, not a regular file"), "\(result)")
    }

    static func describe(_: InputLoader.Type, _ path: String, limits: InputLimits = InputLimits()) -> String {
        do {
            let (snapshot, diagnostics) = try InputLoader.load(paths: [path], limits: limits)
            return diagnostics.map(\.description).joined(separator: "\n") + "\naccepted: \(snapshot.services.count) Service"
        } catch {
            return error.description
        }
    }

    @Test func danglingLinksAndLoopsAreErrorsNamingThem() throws {
        try write("svc.yaml")
        #expect(symlink(dir + "/gone.yaml", dir + "/dangling.yaml") == 0)
        #expect(symlink(dir + "/loop-b", dir + "/loop-a") == 0)
        #expect(symlink(dir + "/loop-a", dir + "/loop-b") == 0)
        // A dangling link is an error whatever its name: it may have pointed at a directory.
        #expect(symlink(dir + "/gone", dir + "/more") == 0)
        let text = Self.describe(InputLoader.self, dir)
        #expect(text.contains("dangling.yaml: error: cannot read: dangling symbolic link to \"\(dir)/gone.yaml\""), "\(text)")
        #expect(text.contains("more: error: cannot read: dangling symbolic link"), "\(text)")
        #expect(text.contains("loop-a: error: cannot read: symbolic link to \"\(dir)/loop-b\": Too many levels of symbolic links"), "\(text)")
        #expect(text.contains("4 errors; no image written"), "\(text)")
    }

    @Test func anUnlistableDirectoryIsAnError() throws {
        // Root reads every directory whatever its mode: there is nothing to refuse then.
        guard getuid() != 0 else { return }
        #expect(mkdir(dir + "/closed", 0o000) == 0)
        let text = Self.describe(InputLoader.self, dir)
        #expect(text.contains("closed: error: cannot list the directory: Permission denied"), "\(text)")
    }

    @Test func aFileOverTheCapIsRefusedBeforeItIsRead() throws {
        try write("big.yaml", Self.service + "# " + String(repeating: "x", count: 4096) + "\n")
        let text = Self.describe(InputLoader.self, dir + "/big.yaml", limits: InputLimits(maxFileBytes: 1024))
        let size = Self.service.utf8.count + 2 + 4096 + 1
        #expect(text.contains("big.yaml: error: file is \(size) bytes, more than the limit of 1024 (--max-file-bytes raises it)"), "\(text)")
        // Under the cap it compiles.
        #expect(Self.describe(InputLoader.self, dir + "/big.yaml").contains("accepted: 1 Service"))
    }

    @Test func aPipeNamedOnTheCommandLineIsReadWithinTheCap() throws {
        let fifo = dir + "/stdin.yaml"
        #expect(mkfifo(fifo, 0o644) == 0)
        let text = Self.service
        Thread.detachNewThread {
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { return }
            _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        let read = try #require(withDeadline(20) { Self.describe(InputLoader.self, fifo) })
        #expect(read.contains("accepted: 1 Service"), "\(read)")

        // A pipe that goes on past the cap (as /dev/zero would) is refused once it passes it;
        // its writer then sees a closed pipe (EPIPE, not the signal).
        signal(SIGPIPE, SIG_IGN)
        Thread.detachNewThread {
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { return }
            let block = [UInt8](repeating: 0x20, count: 1 << 16)
            for _ in 0..<64 where block.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
        let refused = try #require(withDeadline(20) { Self.describe(InputLoader.self, fifo, limits: InputLimits(maxFileBytes: 1 << 20)) })
        #expect(refused.contains("stdin.yaml: error: file is over"), "\(refused)")
        #expect(refused.contains("more than the limit of 1048576"), "\(refused)")
    }

    @Test func aDeviceNamedOnTheCommandLineIsRefused() {
        let text = Self.describe(InputLoader.self, "/dev/zero")
        #expect(text.contains("/dev/zero: error: cannot read: a character device, not a file"), "\(text)")
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
