import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A failed file-system operation: what was attempted, on which path, and the system's reason
/// (swift-system's `Errno`, whose description is the C library's message). The one formatting
/// of errno messages in the project.
public struct FileSystemError: Error, Sendable, CustomStringConvertible {
    /// What was attempted, when the message names it before the path ("create", "open cgroup").
    public var operation: String?
    public var path: String
    /// The system's error, when the failure is one.
    public var errno: Errno?
    /// Why, in words: the errno's message, or a condition no call reported ("is a directory").
    public var reason: String
    /// Appended in parentheses (what would make the operation succeed).
    public var hint: String?

    /// A failure the system reported; `step` names the call inside a larger operation
    /// ("fsync", "rename"), before the message.
    public init(_ operation: String? = nil, path: String, _ errno: Errno, step: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        reason = step.map { "\($0): \(errno)" } ?? errno.description
    }

    /// A failure the system reported as a C `errno` value (for callers without swift-system).
    public init(_ operation: String? = nil, path: String, code: Int32) {
        self.init(operation, path: path, Errno(rawValue: code))
    }

    /// A condition found, not reported by a call.
    public init(_ operation: String? = nil, path: String, message: String) {
        self.operation = operation
        self.path = path
        reason = message
    }

    public var description: String {
        (operation.map { "\($0) " } ?? "") + "\(path): \(reason)" + (hint.map { " (\($0))" } ?? "")
    }
}

extension Errno {
    /// The calling thread's errno, after a C call reported a failure.
    public static var last: Errno { Errno(rawValue: Glibc.errno) }
}
