import Compiler
import Foundation
@testable import KubeAPI
import Manifests
import MapImage
import Testing
@testable import Watcher

/// Random sequences of object changes, read the way a reflector reads them — list, then watch
/// from the list's version through the NDJSON decoder, with chunks cut at random places,
/// bookmarks, dropped connections resumed from the last version, and 410 Gone when the version
/// fell out of the server's window — must leave the store equal to the server: the same image.
@Suite struct ConvergenceTests {
    /// A tiny API server for one kind: objects, an event log with versions, and a window.
    struct Server {
        var kind: String
        var objects: [String: [UInt8]] = [:]  // "ns/name" → JSON
        var log: [(rv: Int, line: [UInt8])] = []
        var rv = 100
        var window = 8  // events kept; older versions get 410

        func list() -> (items: [(key: KindStore.Key, object: [UInt8])], rv: String) {
            let items = objects.keys.sorted().map { k -> (key: KindStore.Key, object: [UInt8]) in
                let parts = k.split(separator: "/", maxSplits: 1).map(String.init)
                return (KindStore.Key(namespace: parts[0], name: parts[1]), objects[k] ?? [])
            }
            return (items, "\(rv)")
        }

        /// The watch body from `from` (exclusive): the events after it, or a 410 ERROR.
        func watch(from: String) -> [UInt8] {
            let v = Int(from) ?? 0
            if let oldest = log.first?.rv, v < oldest - 1 {
                return Array("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"code\":410,\"reason\":\"Expired\"}}\n".utf8)
            }
            return log.filter { $0.rv > v }.flatMap { $0.line + [UInt8(ascii: "\n")] }
        }

        mutating func emit(_ type: String, _ object: [UInt8]) {
            log.append((rv, Array("{\"type\":\"\(type)\",\"object\":".utf8) + object + Array("}".utf8)))
            if log.count > window { log.removeFirst(log.count - window) }
        }

        mutating func change(_ name: String, _ body: ((String) -> String)?) {
            rv += 1
            let key = "default/\(name)"
            if let body {
                let json = Array(body("\(rv)").utf8)
                let type = objects[key] == nil ? "ADDED" : "MODIFIED"
                objects[key] = json
                emit(type, json)
            } else if let old = objects.removeValue(forKey: key) {
                // DELETED carries the last state, with the deletion's version.
                let text = String(decoding: old, as: UTF8.self)
                emit("DELETED", Array(text.replacingOccurrences(of: #""resourceVersion":"\d+""#, with: "\"resourceVersion\":\"\(rv)\"",
                                                                 options: .regularExpression).utf8))
            }
        }

        mutating func bookmark() {
            rv += 1
            emit("BOOKMARK", Array("{\"kind\":\"\(kind)\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"\(rv)\"}}".utf8))
        }
    }

    static func service(_ i: Int, port: Int, rv: String) -> String {
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s\#(i)","namespace":"default","resourceVersion":"\#(rv)"},"spec":{"clusterIP":"10.96.1.\#(i)","clusterIPs":["10.96.1.\#(i)"],"ports":[{"name":"p","port":\#(port),"protocol":"TCP"}]}}"#
    }

    static func slice(_ i: Int, backends: [Int], rv: String) -> String {
        let eps = backends.map { #"{"addresses":["10.244.\#(i).\#($0)"],"conditions":{"ready":true}}"# }.joined(separator: ",")
        return #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s\#(i)-x","namespace":"default","resourceVersion":"\#(rv)","labels":{"kubernetes.io/service-name":"s\#(i)"}},"addressType":"IPv4","endpoints":[\#(eps)],"ports":[{"name":"p","port":8080,"protocol":"TCP"}]}"#
    }

    /// A reflector over one server: list, then watch with faults until caught up.
    struct Client {
        var store: KindStore
        var rng: SystemRandomNumberGenerator

        mutating func sync(_ server: Server, faults: Bool) throws {
            if store.resourceVersion == nil {
                let l = server.list()
                store.replace(items: l.items, resourceVersion: l.rv)
            }
            for _ in 0..<20 {
                let body = server.watch(from: store.resourceVersion ?? "0")
                var stream = WatchStream()
                var next = KindStore.Next.watch
                var offset = 0
                var applied = 0
                // Random chunking; with faults, the connection drops after a random number of bytes.
                let cutAt = faults && Bool.random(using: &rng) ? Int.random(in: 0...max(body.count, 1), using: &rng) : body.count
                reading: while offset < min(cutAt, body.count) {
                    let n = Int.random(in: 1...64, using: &rng)
                    let end = min(offset + n, cutAt, body.count)
                    for e in try stream.feed(body[offset..<end]) {
                        next = store.apply(e)
                        applied += 1
                        if next == .relist { break reading }
                    }
                    offset = end
                }
                if next == .relist {
                    let l = server.list()
                    store.replace(items: l.items, resourceVersion: l.rv)
                    continue
                }
                if cutAt >= body.count { return }  // caught up
                // Dropped mid-stream: resume from the last applied version.
            }
        }
    }

    func image(_ manifests: [(path: String, bytes: [UInt8])]) throws -> [UInt8] {
        let (snapshot, diags) = try InputLoader.load(contents: manifests)
        return ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diags).contents)
    }

    @Test(arguments: 0..<12)
    func randomChangesConverge(seed: Int) throws {
        var services = Server(kind: "Service")
        var slices = Server(kind: "EndpointSlice")
        var a = Client(store: KindStore(kind: "Service"), rng: SystemRandomNumberGenerator())
        var b = Client(store: KindStore(kind: "EndpointSlice"), rng: SystemRandomNumberGenerator())
        var rng = SystemRandomNumberGenerator()
        for step in 0..<60 {
            // A few changes on the server.
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                let i = Int.random(in: 1...6, using: &rng)
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<4:
                    let port = [80, 81, 443][Int.random(in: 0..<3, using: &rng)]
                    services.change("s\(i)") { Self.service(i, port: port, rv: $0) }
                case 4..<8:
                    let backends = (1...Int.random(in: 1...4, using: &rng)).map { _ in Int.random(in: 1...9, using: &rng) }
                    slices.change("s\(i)-x") { Self.slice(i, backends: Array(Set(backends)).sorted(), rv: $0) }
                case 8:
                    services.change("s\(i)", nil)
                default:
                    slices.change("s\(i)-x", nil)
                }
            }
            if Bool.random(using: &rng) { services.bookmark() }
            // Sometimes the client is away long enough for its version to leave the window.
            if step % 7 == 3 { continue }
            try a.sync(services, faults: true)
            try b.sync(slices, faults: true)
        }
        // Quiescence: catch up without faults.
        try a.sync(services, faults: false)
        try b.sync(slices, faults: false)
        let want = services.list().items.map { ("Service/\($0.key.namespace)/\($0.key.name).json", $0.object) }
            + slices.list().items.map { ("EndpointSlice/\($0.key.namespace)/\($0.key.name).json", $0.object) }
        #expect(a.store.objects.count == services.objects.count && b.store.objects.count == slices.objects.count, "seed \(seed)")
        let got = try image(KindStore.manifests([a.store, b.store]))
        let expected = try image(want)
        #expect(got == expected, "seed \(seed): the store's image differs from a full compile of the server's objects")
    }
}
