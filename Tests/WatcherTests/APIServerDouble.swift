import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// An API server double for the watcher's tests (plain HTTP): paged lists with limit/continue and
/// resourceVersion, watch streams with bookmarks, ERROR 410 for a version older than its window,
/// events cut into chunks in the middle of a line, streams closed mid-event, and bearer tokens
/// (401 without the right one, 403 for a token without rights). It is a double: there is no API
/// server on this machine, so what a real one sends is reproduced here (lists are `<Kind>List`
/// whose built-in items carry no kind/apiVersion, CRD items and watch objects do) — and, with
/// `listFaults` / `watchFaults`, what a broken or hostile one sends.
final class APIServerDouble: Sendable {
    /// What a list of a path answers instead of its page, until cleared.
    enum ListFault: Sendable {
        /// A ConfigMapList (a list of another kind) with one ConfigMap.
        case wrongKind
        /// HTTP 200 carrying a Status (no items).
        case statusIn200
        /// A list whose items are ConfigMaps (kind given on the item).
        case itemOfWrongKind
        /// An item of a namespaced kind without metadata.namespace.
        case itemWithoutNamespace
        /// An item whose metadata.name is a number.
        case itemNameNotString
        /// This HTTP status with a Status body.
        case http(Int)
        /// Every item in one page, whatever the limit (a server ignoring `limit`), each padded
        /// with an annotation of this many bytes.
        case ignoreLimit(padding: Int)
        /// One more item with an annotation of this many bytes.
        case oversizeItem(Int)
    }

    /// What a watch of a path answers, until cleared.
    enum WatchFault: Sendable {
        /// An ERROR 410 event at once, then the end of the stream.
        case gone
        /// This HTTP status with a Status body.
        case http(Int)
    }

    /// The kind and apiVersion served at each path.
    static let kinds: [String: (kind: String, apiVersion: String)] = [
        "/api/v1/services": ("Service", "v1"), "/api/v1/nodes": ("Node", "v1"), "/api/v1/pods": ("Pod", "v1"),
        "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
        "/apis/balancing.elf.io/v1beta1/localredirectpolicies": ("LocalRedirectPolicy", "balancing.elf.io/v1beta1"),
        "/apis/balancing.elf.io/v1beta1/balancingpolicies": ("BalancingPolicy", "balancing.elf.io/v1beta1"),
        "/apis/networking.k8s.io/v1/servicecidrs": ("ServiceCIDR", "networking.k8s.io/v1"),
    ]

    struct State {
        var rv = 1000
        /// path → name → item JSON (without kind, as lists carry them)
        var objects: [String: [String: String]] = [:]
        /// path → (rv, event line)
        var log: [String: [(Int, String)]] = [:]
        var window = 50
        /// Fault injection: the next watch responses end after this many bytes (mid-event).
        var cutNextWatches = 0
        /// Bumped by compact(): streams opened before end (a real server's watch cache moved on).
        var epoch = 0
        var watchRequests = 0
        var listRequests = 0
        /// Requests per path.
        var lists: [String: Int] = [:]
        var watches: [String: Int] = [:]
        var listFaults: [String: ListFault] = [:]
        var watchFaults: [String: WatchFault] = [:]
        /// CRD paths served (their CustomResourceDefinitions installed).
        var crds: Set<String> = []
        /// The headers of the last request (names lowercased), whatever the answer.
        var lastHeaders: [String: [String]] = [:]
        /// The field selector of every request, by path ("" for none), in order.
        var fieldSelectors: [String: [String]] = [:]
        /// The label selector of every request, by path ("" for none), in order.
        var labelSelectors: [String: [String]] = [:]
    }

    let state = Mutex(State())
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    /// With `tls`, HTTPS; when it verifies client certificates, a request with a verified
    /// certificate needs no token.
    init(tls: TLSConfiguration? = nil) throws {
        let box = StateBox()
        let context = try tls.map { try NIOSSLContext(configuration: $0) }
        let certificates = tls.map { $0.certificateVerification != .none } ?? false
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    box.clientCertificates = certificates
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(box: box))
                }
            }
        channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        box.server.withLock { $0 = self }
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    final class StateBox: @unchecked Sendable {
        let server = Mutex<APIServerDouble?>(nil)
        var clientCertificates = false
    }

    static func itemName(_ json: String) -> String {
        guard let r = json.range(of: "\"name\":\"") else { return "" }
        return String(json[r.upperBound...].prefix { $0 != "\"" })
    }

    /// Adds or changes an object (JSON without kind and apiVersion; metadata.resourceVersion is set here).
    func put(_ path: String, kind: String, apiVersion: String, _ json: String) {
        state.withLock { s in
            s.rv += 1
            let item = json.replacingOccurrences(of: #""resourceVersion":"[0-9]*","#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #","resourceVersion":"[0-9]*""#, with: "", options: .regularExpression)
                .replacingOccurrences(of: "\"metadata\":{", with: "\"metadata\":{\"resourceVersion\":\"\(s.rv)\",")
            let name = Self.itemName(json)
            let type = s.objects[path]?[name] == nil ? "ADDED" : "MODIFIED"
            s.objects[path, default: [:]][name] = item
            let object = "{\"kind\":\"\(kind)\",\"apiVersion\":\"\(apiVersion)\"," + item.dropFirst()
            s.log[path, default: []].append((s.rv, "{\"type\":\"\(type)\",\"object\":\(object)}"))
            if let n = s.log[path]?.count, n > s.window { s.log[path]?.removeFirst(n - s.window) }
        }
    }

    func delete(_ path: String, kind: String, apiVersion: String, name: String) {
        state.withLock { s in
            guard let item = s.objects[path]?.removeValue(forKey: name) else { return }
            s.rv += 1
            let object = "{\"kind\":\"\(kind)\",\"apiVersion\":\"\(apiVersion)\"," + item.dropFirst()
            s.log[path, default: []].append((s.rv, "{\"type\":\"DELETED\",\"object\":\(object)}"))
        }
    }

    /// Sends `line` (a watch event as is) to the path's watchers, with the next version.
    func inject(_ path: String, _ line: String) {
        state.withLock { s in
            s.rv += 1
            s.log[path, default: []].append((s.rv, line))
        }
    }

    /// Ends every open watch stream at an event boundary (the watchers reconnect).
    func dropStreams() {
        state.withLock { $0.epoch += 1 }
    }

    /// Drops every event from the window (a compaction): watches from older versions get 410.
    func compact() {
        state.withLock { s in
            s.rv += 1
            for k in s.log.keys { s.log[k] = [] }
            s.log["__compacted"] = [(s.rv, "")]
            s.epoch += 1
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let box: StateBox
        var head: HTTPRequestHead?
        var streaming: RepeatedTask?

        init(box: StateBox) { self.box = box }

        func channelInactive(context: ChannelHandlerContext) {
            streaming?.cancel()
            context.fireChannelInactive()
        }

        func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String) {
            var h = HTTPHeaders()
            h.add(name: "Content-Type", value: "application/json")
            h.add(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: h))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head, let server = box.server.withLock({ $0 }) else { return }
                let auth = head.headers["Authorization"].first ?? ""
                server.state.withLock { s in
                    s.lastHeaders = [:]
                    for (name, value) in head.headers { s.lastHeaders[name.lowercased(), default: []].append(value) }
                }
                if auth == "Bearer limited" {
                    respond(context, .forbidden, #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services is forbidden: User \"limited\" cannot list resource","reason":"Forbidden","code":403}"#)
                    return
                }
                guard auth == "Bearer good" || (box.clientCertificates && auth.isEmpty) else {
                    respond(context, .unauthorized, #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#)
                    return
                }
                let parts = head.uri.split(separator: "?", maxSplits: 1)
                let path = String(parts[0])
                var query: [String: String] = [:]
                if parts.count > 1 {
                    for kv in parts[1].split(separator: "&") {
                        let p = kv.split(separator: "=", maxSplits: 1)
                        query[String(p[0])] = p.count > 1 ? String(p[1]).removingPercentEncoding ?? String(p[1]) : ""
                    }
                }
                let known = server.state.withLock { $0.objects[path] != nil || $0.log[path] != nil || $0.crds.contains(path) }
                guard known || path.hasSuffix("/services") || path.hasSuffix("/endpointslices") || path.hasSuffix("/nodes") || path.hasSuffix("/pods") else {
                    respond(context, .notFound, Self.status(404))
                    return
                }
                let watch = query["watch"] == "1"
                // spec.nodeName=X, as the kubelet asks for Pods: objects that name another node
                // are not served (matched on their JSON text; the double's objects are compact).
                let selector = query["fieldSelector"] ?? ""
                let needle: String? = selector.hasPrefix("spec.nodeName=")
                    ? "\"nodeName\":\"" + String(selector.dropFirst("spec.nodeName=".count)) + "\"" : nil
                // Label selectors of `key=value` terms only: each must be in the object's text.
                let labels = query["labelSelector"] ?? ""
                let labelNeedles = labels.split(separator: ",").map { term -> String in
                    let kv = term.split(separator: "=", maxSplits: 1)
                    return "\"\(kv[0])\":\"\(kv.count > 1 ? kv[1] : "")\""
                }
                let only: @Sendable (String) -> Bool = { line in
                    (needle.map { line.contains($0) } ?? true) && labelNeedles.allSatisfy { line.contains($0) }
                }
                let (listFault, watchFault) = server.state.withLock { s in
                    s.fieldSelectors[path, default: []].append(selector)
                    s.labelSelectors[path, default: []].append(labels)
                    if watch { s.watches[path, default: 0] += 1 } else { s.lists[path, default: 0] += 1 }
                    return (s.listFaults[path], s.watchFaults[path])
                }
                if watch, let watchFault {
                    server.state.withLock { $0.watchRequests += 1 }
                    switch watchFault {
                    case .http(let code): respond(context, HTTPResponseStatus(statusCode: code), Self.status(code))
                    case .gone: respond(context, .ok, #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}}"# + "\n")
                    }
                    return
                }
                if !watch, let listFault {
                    server.state.withLock { $0.listRequests += 1 }
                    serveFault(context, listFault, server: server, path: path)
                    return
                }
                if watch {
                    startWatch(context, server: server, path: path, from: Int(query["resourceVersion"] ?? "0") ?? 0, only: only)
                } else {
                    list(context, server: server, path: path, limit: Int(query["limit"] ?? "") ?? 500, start: Int(query["continue"] ?? "") ?? 0, only: only)
                }
            }
        }

        static func status(_ code: Int) -> String {
            let reason = [401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired", 500: "InternalError"][code] ?? "Unknown"
            return #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the double says \#(code)","reason":"\#(reason)","code":\#(code)}"#
        }

        /// The path's items as a list sends them: built-in kinds' without kind and apiVersion,
        /// custom kinds' with them (as real API servers do).
        static func items(_ s: State, _ path: String) -> [String] {
            let custom = path.hasPrefix("/apis/balancing.elf.io/")
            let (kind, version) = APIServerDouble.kinds[path] ?? ("Unknown", "v1")
            return (s.objects[path] ?? [:]).keys.sorted().map { name in
                let item = s.objects[path]?[name] ?? "{}"
                return custom ? "{\"kind\":\"\(kind)\",\"apiVersion\":\"\(version)\"," + item.dropFirst() : item
            }
        }

        static func listBody(_ path: String, rv: Int, next: String, items: some Sequence<String>) -> String {
            let (kind, version) = APIServerDouble.kinds[path] ?? ("Unknown", "v1")
            return "{\"kind\":\"\(kind)List\",\"apiVersion\":\"\(version)\",\"metadata\":{\"resourceVersion\":\"\(rv)\",\"continue\":\"\(next)\"},\"items\":[\(items.joined(separator: ","))]}"
        }

        func list(_ context: ChannelHandlerContext, server: APIServerDouble, path: String, limit: Int, start: Int, only: (String) -> Bool = { _ in true }) {
            let (items, rv) = server.state.withLock { s -> ([String], Int) in
                s.listRequests += 1
                return (Self.items(s, path).filter(only), s.rv)
            }
            let page = items.dropFirst(start).prefix(limit)
            let next = start + page.count < items.count ? "\(start + page.count)" : ""
            respond(context, .ok, Self.listBody(path, rv: rv, next: next, items: page))
        }

        func serveFault(_ context: ChannelHandlerContext, _ fault: ListFault, server: APIServerDouble, path: String) {
            let (items, rv) = server.state.withLock { s in (Self.items(s, path), s.rv) }
            let configMap = #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","namespace":"default","resourceVersion":"7"},"data":{"a":"b"}}"#
            let service = #"{"metadata":{"name":"odd","resourceVersion":"7"},"spec":{"clusterIP":"10.96.9.9","ports":[{"port":80}]}}"#
            switch fault {
            case .wrongKind:
                respond(context, .ok, #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"\#(rv)"},"items":[\#(configMap)]}"#)
            case .statusIn200:
                respond(context, .ok, Self.status(500))
            case .itemOfWrongKind:
                respond(context, .ok, Self.listBody(path, rv: rv, next: "", items: items + [configMap]))
            case .itemWithoutNamespace:
                respond(context, .ok, Self.listBody(path, rv: rv, next: "", items: items + [service]))
            case .itemNameNotString:
                respond(context, .ok, Self.listBody(path, rv: rv, next: "", items: items + [#"{"metadata":{"name":7,"namespace":"default","resourceVersion":"7"}}"#]))
            case .http(let code):
                respond(context, HTTPResponseStatus(statusCode: code), Self.status(code))
            case .ignoreLimit(let padding):
                let pad = String(repeating: "x", count: padding)
                let padded = items.map { $0.replacingOccurrences(of: "\"metadata\":{", with: "\"metadata\":{\"annotations\":{\"pad\":\"\(pad)\"},") }
                respond(context, .ok, Self.listBody(path, rv: rv, next: "", items: padded))
            case .oversizeItem(let size):
                let big = #"{"metadata":{"name":"big","namespace":"default","resourceVersion":"7","annotations":{"pad":"\#(String(repeating: "x", count: size))"}}}"#
                respond(context, .ok, Self.listBody(path, rv: rv, next: "", items: items + [big]))
            }
        }

        func startWatch(_ context: ChannelHandlerContext, server: APIServerDouble, path: String, from: Int,
                        only: @escaping @Sendable (String) -> Bool = { _ in true }) {
            var h = HTTPHeaders()
            h.add(name: "Content-Type", value: "application/json")
            h.add(name: "Transfer-Encoding", value: "chunked")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
            final class Progress: @unchecked Sendable {
                var sent: Int
                var cut: Int
                var written = 0
                var ticks = 0
                var epoch = 0
                init(sent: Int, cut: Int) {
                    self.sent = sent
                    self.cut = cut
                }
            }
            let cut = server.state.withLock { s -> Int in
                s.watchRequests += 1
                if s.cutNextWatches > 0 { s.cutNextWatches -= 1; return Int.random(in: 20...200) }
                return Int.max
            }
            let p = Progress(sent: from, cut: cut)
            p.epoch = server.state.withLock { $0.epoch }
            let compactedAt = server.state.withLock { $0.log["__compacted"]?.first?.0 ?? 0 }
            if from < compactedAt {
                let gone = #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}}"#
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: gone + "\n")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
                return
            }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            streaming = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(1), delay: .milliseconds(10)) { task in
                let context = bound.value
                p.ticks += 1
                if server.state.withLock({ $0.epoch }) != p.epoch {
                    task.cancel()
                    context.close(promise: nil)
                    return
                }
                let (lines, rv) = server.state.withLock { s in ((s.log[path] ?? []).filter { $0.0 > p.sent }, s.rv) }
                var text = ""
                for (rv, line) in lines where !line.isEmpty {
                    if only(line) { text += line + "\n" }
                    p.sent = rv
                }
                if p.ticks % 20 == 0 {  // a bookmark every 200 ms
                    let (kind, version) = APIServerDouble.kinds[path] ?? ("Unknown", "v1")
                    text += "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"\(kind)\",\"apiVersion\":\"\(version)\",\"metadata\":{\"resourceVersion\":\"\(rv)\"}}}\n"
                    p.sent = max(p.sent, rv)
                }
                guard !text.isEmpty else { return }
                // Chunks split in the middle of lines.
                var bytes = Array(text.utf8)
                var stop = false
                if p.written + bytes.count > p.cut {
                    bytes = Array(bytes.prefix(max(0, p.cut - p.written)))
                    stop = true
                }
                p.written += bytes.count
                var offset = 0
                while offset < bytes.count {
                    let n = min(Int.random(in: 1...40), bytes.count - offset)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes[offset..<(offset + n)])))), promise: nil)
                    offset += n
                }
                context.flush()
                if stop {
                    task.cancel()
                    // The connection breaks mid-event.
                    context.close(promise: nil)
                }
            }
        }
    }
}
