import NIOCore
import NIOHTTP1
import NIOPosix

/// `--metrics-address`: Prometheus text at `/metrics`, `/healthz` (200 or 503), on SwiftNIO.
public final class MetricsEndpoint: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel

    /// The port bound (useful with port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(host: String, port: Int, metrics: WatchMetrics, unhealthyAfter: Duration) throws -> MetricsEndpoint {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(metrics: metrics, unhealthyAfter: unhealthyAfter))
                }
            }
        do {
            let channel = try bootstrap.bind(host: host, port: port).wait()
            return MetricsEndpoint(group: group, channel: channel)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    init(group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.group = group
        self.channel = channel
    }

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let metrics: WatchMetrics
        let unhealthyAfter: Duration
        var uri = ""
        var method: HTTPMethod = .GET

        init(metrics: WatchMetrics, unhealthyAfter: Duration) {
            self.metrics = metrics
            self.unhealthyAfter = unhealthyAfter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                uri = head.uri
                method = head.method
            case .body:
                break
            case .end:
                let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
                var status: HTTPResponseStatus = .ok
                var body: String
                var type = "text/plain; charset=utf-8"
                switch (method, path) {
                case (.GET, "/metrics"), (.HEAD, "/metrics"):
                    body = metrics.exposition()
                    type = "text/plain; version=0.0.4; charset=utf-8"
                case (.GET, "/healthz"), (.HEAD, "/healthz"):
                    let h = metrics.health(unhealthyAfter: unhealthyAfter)
                    status = h.ok ? .ok : .serviceUnavailable
                    body = h.text
                default:
                    status = .notFound
                    body = "not found: /metrics and /healthz are served\n"
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: type)
                headers.add(name: "Content-Length", value: "\(body.utf8.count)")
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                if method != .HEAD {
                    var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
                    buffer.writeString(body)
                    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }
}
