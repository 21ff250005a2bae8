#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing image files. Writes never leave a partial file under the final name: the
/// bytes go to a temporary file in the same directory, are flushed to disk, then renamed over.
public enum ImageFile {
    public struct IOError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Reads a whole file with one allocation of its size (manifests can be hundreds of MB).
    public static func read(_ path: String) throws(IOError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError(path: path, message: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw IOError(path: path, message: "is a directory") }
        let size = Int(st.st_size)
        var failure: Int32 = 0
        var out = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = Glibc.read(fd, buffer.baseAddress.map { $0 + count }, size - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if n == 0 { break }
                count += n
            }
        }
        if failure != 0 { throw IOError(path: path, message: String(cString: strerror(failure))) }
        // A file that grew while being read (or a special file without a size): read the rest.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError(path: path, message: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(IOError) {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(path: tmp, message: String(cString: strerror(errno))) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                close(fd)
                unlink(tmp)
                throw IOError(path: tmp, message: message)
            }
            offset += n
        }
        if fsync(fd) != 0 {
            let message = String(cString: strerror(errno))
            close(fd)
            unlink(tmp)
            throw IOError(path: tmp, message: "fsync: \(message)")
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let message = String(cString: strerror(errno))
            unlink(tmp)
            throw IOError(path: path, message: "rename: \(message)")
        }
    }
}

/// Standard error as a plain file descriptor: Swift 6 forbids the C `stderr` global, and the
/// command line needs unbuffered diagnostics that never interleave with standard output.
public enum StandardError {
    public static func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
