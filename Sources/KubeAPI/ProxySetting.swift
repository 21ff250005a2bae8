import AsyncHTTPClient
import FoundationEssentials

/// A kubeconfig cluster's `proxy-url`, as async-http-client takes it: an HTTP proxy (the TLS
/// connection to the API server goes through a CONNECT tunnel, with basic credentials from the
/// URL when it has them) or a SOCKS5 proxy. kubectl also speaks TLS to an `https://` proxy;
/// balancer cannot, and says so rather than connecting around it.
enum ProxySetting {
    static func parse(_ text: String, origin: String) throws(KubeconfigError) -> HTTPClient.Configuration.Proxy {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw KubeconfigError("\(origin): proxy-url \"\(text)\" is not a URL (http://host:port or socks5://host:port)")
        }
        switch scheme {
        case "http":
            let port = url.port ?? 80
            if let user = url.user {
                return .server(host: host, port: port, authorization: .basic(username: user.removingPercentEncoding ?? user,
                                                                              password: url.password?.removingPercentEncoding ?? ""))
            }
            return .server(host: host, port: port)
        case "socks5", "socks5h":
            guard url.user == nil else { throw KubeconfigError("\(origin): proxy-url \"\(text)\": balancer's SOCKS5 client has no authentication; use an HTTP proxy") }
            return .socksServer(host: host, port: url.port ?? 1080)
        case "https":
            throw KubeconfigError("\(origin): proxy-url \"\(text)\": balancer cannot speak TLS to the proxy itself; use an http:// proxy "
                                  + "(the connection to the API server is TLS inside the tunnel either way)")
        default:
            throw KubeconfigError("\(origin): proxy-url scheme \"\(scheme)\" is not http or socks5")
        }
    }
}
