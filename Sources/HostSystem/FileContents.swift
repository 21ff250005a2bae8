import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Whole files: read with one allocation, written atomically. Writes never leave a partial file
/// under the final name: the bytes go to a temporary file in the same directory, are flushed to
/// disk, then renamed over.
public enum FileContents {
    /// Reads a whole file with one allocation of its size (manifests can be hundreds of MB).
    public static func read(_ path: String) throws(FileSystemError) -> [UInt8] {
        let fd = try FileSystem.open(path, .readOnly)
        defer { try? fd.close() }
        let st = try FileSystem.status(of: fd, path: path)
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FileSystemError(path: path, message: "is a directory") }
        let size = Int(st.st_size)
        var failure: Errno?
        var out = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                do {
                    let n = try fd.read(into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[count...])))
                    if n == 0 { break }
                    count += n
                } catch {
                    failure = error as? Errno ?? .ioError
                    return
                }
            }
        }
        if let failure { throw FileSystemError(path: path, failure) }
        // A file that grew while being read (or a special file without a size): read the rest.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) } } catch {
                throw FileSystemError(path: path, error as? Errno ?? .ioError)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Writes a whole file by rename, so no reader sees half of it. A target that exists and is
    /// not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is written in place instead:
    /// renaming over it would replace the device with a file.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileSystemError) {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            guard (st.st_mode & S_IFMT) != S_IFDIR else { throw FileSystemError(path: path, message: "is a directory") }
            let fd = try FileSystem.open(path, .writeOnly)
            defer { try? fd.close() }
            do {
                _ = try bytes.withUnsafeBytes { try fd.writeAll($0) }
            } catch {
                throw FileSystemError(path: path, error as? Errno ?? .ioError)
            }
            return
        }
        let tmp = "\(path).tmp-\(getpid())"
        let fd = try FileSystem.open(tmp, .writeOnly, options: [.create, .truncate], permissions: FilePermissions(rawValue: 0o644))
        func abandon(_ error: FileSystemError) -> FileSystemError {
            try? fd.close()
            unlink(tmp)
            return error
        }
        do {
            _ = try bytes.withUnsafeBytes { try fd.writeAll($0) }
        } catch {
            throw abandon(FileSystemError(path: tmp, error as? Errno ?? .ioError))
        }
        if fsync(fd.rawValue) != 0 { throw abandon(FileSystemError(path: tmp, .last, step: "fsync")) }
        try? fd.close()
        if rename(tmp, path) != 0 {
            let e = Errno.last
            unlink(tmp)
            throw FileSystemError(path: path, e, step: "rename")
        }
    }
}

/// Standard output for bytes (`compile -o -`): written whole, EINTR and short writes retried.
public enum StandardOutput {
    public static func write(_ bytes: [UInt8]) throws(FileSystemError) {
        do {
            _ = try bytes.withUnsafeBytes { try FileDescriptor.standardOutput.writeAll($0) }
        } catch {
            throw FileSystemError(path: "standard output", error as? Errno ?? .ioError)
        }
    }
}

/// Standard error as a plain file descriptor: Swift 6 forbids the C `stderr` global, and the
/// command line needs unbuffered diagnostics that never interleave with standard output.
public enum StandardError {
    public static func write(_ text: String) {
        // Best effort: a closed standard error drops the text.
        _ = try? Array(text.utf8).withUnsafeBytes { try FileDescriptor.standardError.writeAll($0) }
    }
}
