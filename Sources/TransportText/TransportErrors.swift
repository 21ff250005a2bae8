import AsyncHTTPClient
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// A failure to reach a server (the API server, a registry) in words an operator reads
/// ("connection refused", "no such host"), not the networking library's type dump ("connection
/// reset (error set): Connection refused) (errno: 111)").
public enum TransportErrors {
    /// `tlsHint`: said after a TLS failure (a registry: "needs --plain-http").
    public static func text(_ error: any Error, tlsHint: String = "") -> String {
        if let e = error as? IOError {
            return e.errnoCode == ECONNREFUSED ? "connection refused" : String(cString: strerror(e.errnoCode))
        }
        if let e = error as? SocketAddressError, case .unknown(let host, let port) = e {
            return "no such host \(host) (port \(port)): the name does not resolve"
        }
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "timed out connecting"
            case .deadlineExceeded, .readTimeout: return "timed out waiting for the answer"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(e)"
            }
        }
        if let e = error as? NIOSSLError { return "TLS: \(e)" + tlsHint }
        if let e = error as? BoringSSLError { return "TLS: \(e)" + tlsHint }
        return "\(error)"
    }
}
