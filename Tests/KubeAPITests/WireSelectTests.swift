import CJansson
@testable import KubeAPI
import Manifests
import TestSupport
import Testing

/// Pod and Node events and list pages are read by wire_select, which copies out only the fields
/// kept and checked: what they give must be what reading the whole text with jansson gave (the
/// reference below is that path), and what jansson refuses must be refused. fuzz/c/wire_fuzz.c
/// holds the C reader to jansson on arbitrary bytes; these hold the Swift path on Kubernetes-shaped
/// ones.
@Suite struct WireSelectTests {
    static let pods = KubeResource.pods.wire
    static let nodes = KubeResource.nodes.wire

    /// The event as the whole-tree path read it: jansson, the checks, the trim.
    static func reference(_ line: [UInt8], _ resource: WireResource) throws(WireError) -> (namespace: String, name: String, rv: String, kept: [UInt8], size: Int) {
        let root = try WireJSON.load(line, what: "the watch event")
        guard let r = root.pointer, let object = json_object_get(r, "object") else { throw WireError(.malformed, "no object") }
        defer { cjansson_decref(r) }
        let id = try WireJSON.checkObject(object, resource, place: "the object")
        let kept = trimmedDump(object, kind: resource.kind) ?? WireJSON.dump(object)
        return (id.namespace, id.name, id.resourceVersion, kept, WireJSON.dump(object).count)
    }

    /// A JSON string of `s` with escapes chosen at random (each spelling jansson reads the same).
    static func quoted(_ s: String, _ rng: inout SplitMix) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else if rng.next() % 4 == 0 {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += String(format: "\\u%04X\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else if u == "/" {
                        out += "\\/"
                    } else {
                        out += String(format: "\\u%04x", u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A JSON value: members shuffled, whitespace at random.
    indirect enum Value {
        case string(String), number(String), bool(Bool), null
        case object([(String, Value)]), array([Value])

        func text(_ rng: inout SplitMix) -> String {
            let ws = [" ", "", "\n  ", "\t", "\r\n"]
            func w(_ rng: inout SplitMix) -> String { rng.next() % 3 == 0 ? ws[Int(rng.next() % UInt64(ws.count))] : "" }
            switch self {
            case .string(let s): return WireSelectTests.quoted(s, &rng)
            case .number(let n): return n
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            case .array(let a):
                var parts: [String] = []
                for v in a { parts.append(w(&rng) + v.text(&rng) + w(&rng)) }
                return "[" + parts.joined(separator: ",") + "]"
            case .object(let members):
                var m = members
                for i in stride(from: m.count - 1, to: 0, by: -1) { m.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                var parts: [String] = []
                for (k, v) in m { parts.append(w(&rng) + WireSelectTests.quoted(k, &rng) + w(&rng) + ":" + w(&rng) + v.text(&rng)) }
                return "{" + parts.joined(separator: ",") + w(&rng) + "}"
            }
        }
    }

    static let words = ["web", "caf\u{e9}", "a/b", "emoji-\u{1F600}", "line\nbreak", "q\"uote", "back\\slash", "x", "\u{1}ctl", "\u{4e2d}\u{6587}"]

    /// A Pod with kept fields, fields of the wrong shape now and then, and the noise a kubelet
    /// writes (managedFields, env, statuses).
    static func pod(_ rng: inout SplitMix) -> Value {
        func word(_ rng: inout SplitMix) -> String { rng.pick(words) }
        var labels: [(String, Value)] = []
        for i in 0..<Int(rng.next() % 4) { labels.append(("l\(i)-\(word(&rng))", .string(word(&rng)))) }
        var meta: [(String, Value)] = [("name", .string("p-\(rng.next() % 1000)")), ("namespace", .string("ns-\(word(&rng))")),
                                       ("resourceVersion", .string("\(rng.next() % 100_000)")), ("uid", .string("u\(rng.next())")),
                                       ("labels", .object(labels))]
        if rng.next() % 2 == 0 {
            meta.append(("managedFields", .array([.object([("manager", .string("kubelet")), ("fieldsV1", .object([("f:status", .object([("f:conditions", .object([]))]))])),
                                                           ("time", .string("2026-12-04T00:00:00Z"))])])))
        }
        if rng.next() % 5 == 0 { meta.append(("deletionTimestamp", .string("2026-12-04T00:00:00Z"))) }
        let port: Value = .object([("containerPort", .number(rng.pick(["8080", "53", "0", "-1", "1e2", "65536"]))), ("protocol", .string(rng.pick(["TCP", "UDP"])))])
        let container: Value = .object([("name", .string(word(&rng))), ("image", .string("registry/x:\(rng.next() % 9)")),
                                        ("env", .array([.object([("name", .string("A")), ("value", .string(word(&rng)))])])),
                                        ("ports", rng.next() % 6 == 0 ? .string("oops") : .array([port]))])
        var spec: [(String, Value)] = [("nodeName", .string("node-\(rng.next() % 9)")), ("containers", .array([container]))]
        if rng.next() % 3 == 0 { spec.append(("hostNetwork", .bool(rng.next() % 2 == 0))) }
        if rng.next() % 3 == 0 { spec.append(("volumes", .array([.object([("name", .string("v")), ("emptyDir", .object([]))])]))) }
        let conditions: Value = rng.next() % 7 == 0 ? .object([("type", .string("Ready"))])
            : .array([.object([("type", .string("Ready")), ("status", .string(rng.pick(["True", "False"]))), ("lastProbeTime", .null)]), .number("3")])
        let status: Value = rng.next() % 9 == 0 ? .string("odd") : .object([
            ("phase", .string(rng.pick(["Running", "Pending"]))), ("podIP", .string("10.0.0.\(rng.next() % 250)")),
            ("podIPs", .array([.object([("ip", .string("10.0.0.\(rng.next() % 250)"))])])), ("conditions", conditions),
            ("containerStatuses", .array([.object([("name", .string("c")), ("restartCount", .number("\(rng.next() % 5)")), ("started", .bool(true))])])),
        ])
        var pod: [(String, Value)] = [("metadata", .object(meta)), ("spec", .object(spec)), ("status", status)]
        if rng.next() % 4 != 0 { pod.append(("kind", .string("Pod"))) }
        if rng.next() % 4 != 0 { pod.append(("apiVersion", .string("v1"))) }
        if rng.next() % 5 == 0 { pod.append(("extra", .array([.number("1.5"), .number("-0"), .number("12345678901234"), .null, .bool(false)]))) }
        return .object(pod)
    }

    @Test(arguments: [1, 2, 3])
    func podEventsReadAsTheWholeTreeReadThem(seed: UInt64) throws {
        var rng = SplitMix(state: seed)
        for i in 0..<300 {
            let type = rng.pick(["ADDED", "MODIFIED", "DELETED"])
            let text = "{\"type\":\"\(type)\",\"object\":" + Self.pod(&rng).text(&rng) + "}"
            let line = Array(text.utf8)
            let want = try Self.reference(line, Self.pods)
            let got = try RawWatchEvent.parse(line, expecting: Self.pods)
            #expect(got.type == type && got.namespace == want.namespace && got.name == want.name && got.resourceVersion == want.rv, "event \(i): \(text)")
            #expect(got.object == want.kept, "event \(i): \(text)\n got  \(String(decoding: got.object, as: UTF8.self))\n want \(String(decoding: want.kept, as: UTF8.self))")
        }
    }

    @Test func listPagesReadAsTheWholeTreeReadThem() throws {
        var rng = SplitMix(state: 7)
        var items: [String] = []
        for _ in 0..<200 { items.append(Self.pod(&rng).text(&rng)) }
        let body = Array(#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"99","continue":"next"},"items":[\#(items.joined(separator: ","))]}"#.utf8)
        let page = try RawListPage.parse(body, expecting: Self.pods)
        #expect(page.items.count == 200 && page.resourceVersion == "99" && page.continueToken == "next")
        for (item, text) in zip(page.items, items) {
            let want = try Self.reference(Array("{\"type\":\"ADDED\",\"object\":\(text)}".utf8), Self.pods)
            #expect(item.name == want.name && item.namespace == want.namespace && item.object == want.kept, "\(text)")
        }
    }

    /// Refused as jansson refuses them, wherever they are (most are in fields never kept).
    @Test func whatJanssonRefusesIsRefused() throws {
        // Left open: the fields below are metadata's (depth: the event, the object, metadata).
        let meta = #""metadata":{"name":"p","namespace":"n","resourceVersion":"1""#
        let bad = [
            #"{"type":"ADDED","object":{\#(meta),"managedFields":[{"a":1,"a":2}]}}}"#,           // duplicate, skipped
            #"{"type":"ADDED","object":{\#(meta),"x":{"k\u0061":1,"ka":2}}}}"#,                   // duplicate once decoded
            #"{"type":"ADDED","type":"MODIFIED","object":{\#(meta)}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"env":"\ud800"}}}"#,                             // lone high surrogate
            #"{"type":"ADDED","object":{\#(meta),"env":"\udc00"}}}"#,                             // lone low surrogate
            #"{"type":"ADDED","object":{\#(meta),"env":"\u0000"}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"env":"\x"}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":012}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":9223372036854775808}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":-9223372036854775809}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":1e400}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":1.}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":[1,]}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"n":tru}}}"#,
            #"{"type":"ADDED","object":{\#(meta)}} x"#,
            #"{"type":"ADDED","object":{\#(meta)}}"#,                                             // unbalanced
            #""ADDED""#,
            "{\"type\":\"ADDED\",\"object\":{\(meta),\"env\":\"a\u{1}b\"}}}",                    // control character
            "{\"type\":\"ADDED\",\"object\":{\(meta),\"d\":" + String(repeating: "[", count: 2046) + String(repeating: "]", count: 2046) + "}}}",
        ]
        for text in bad {
            let line = Array(text.utf8)
            #expect(throws: WireError.self, "jansson refuses \(text.prefix(120))") { try WireJSON.load(line, what: "x") }
            do {
                _ = try RawWatchEvent.parse(line, expecting: Self.pods)
                Issue.record("accepted: \(text.prefix(120))")
            } catch {
                #expect(error.problem == .malformed, "\(text.prefix(120)): \(error)")
            }
        }
        // Objects past the size where keys are indexed: a duplicate anywhere is still found.
        for (count, dup) in [(30, 3), (100, 90), (300, 299), (1000, nil)] as [(Int, Int?)] {
            var keys = (0..<count).map { "\"k\($0)\":\($0)" }
            if let dup { keys.append("\"k\(dup)\":0") }
            let line = Array(#"{"type":"ADDED","object":{\#(meta)},"big":{\#(keys.joined(separator: ","))}}}"#.utf8)
            let jansson = (try? WireJSON.load(line, what: "x")) != nil
            let ours = (try? RawWatchEvent.parse(line, expecting: Self.pods)) != nil
            #expect(jansson == (dup == nil) && ours == jansson, "\(count) keys, duplicate \(dup ?? -1)")
        }
        // Invalid UTF-8 in a skipped string.
        var line = Array(#"{"type":"ADDED","object":{\#(meta),"env":"ab"}}}"#.utf8)
        line[line.count - 5] = 0xC0
        #expect(throws: WireError.self) { try WireJSON.load(line, what: "x") }
        #expect(throws: WireError.self) { try RawWatchEvent.parse(line, expecting: Self.pods) }
        // At the limits, accepted as jansson accepts them.
        let good = [
            "{\"type\":\"ADDED\",\"object\":{\(meta),\"d\":" + String(repeating: "[", count: 2045) + String(repeating: "]", count: 2045) + "}}}",
            #"{"type":"ADDED","object":{\#(meta),"n":[-9223372036854775808,9223372036854775807,1e-400,-0,0.5e+3]}}}"#,
            #"{"type":"ADDED","object":{\#(meta),"s":"\ud83d\ude00\/\b\f\t"}}}"#,
        ]
        for text in good {
            let line = Array(text.utf8)
            _ = try WireJSON.load(line, what: "x")
            let e = try RawWatchEvent.parse(line, expecting: Self.pods)
            #expect(e.name == "p")
        }
    }

    /// jansson's reader treats a NUL byte oddly (after a number it is passed over, between other
    /// tokens it ends the text); a text with one goes to jansson whole and reads as it always did.
    @Test func aNulByteIsLeftToJansson() throws {
        let text = #"{"type":"ADDED","object":{"metadata":{"name":"p","namespace":"n","resourceVersion":"1"},"spec":{"nodeName":"a","n":5}}}"#
        let plain = try RawWatchEvent.parse(Array(text.utf8), expecting: Self.pods)
        for at in [1, 10, text.utf8.count - 3] {
            var line = Array(text.utf8)
            line.insert(0, at: at)
            let jansson = (try? WireJSON.load(line, what: "x")) != nil
            let event = try? RawWatchEvent.parse(line, expecting: Self.pods)
            #expect((event != nil) == jansson, "NUL at \(at)")
            if let event { #expect(event.name == "p" && event.object == plain.object) }
        }
        var afterNumber = Array(text.utf8)
        afterNumber.insert(0, at: text.utf8.count - 3)
        #expect(try RawWatchEvent.parse(afterNumber, expecting: Self.pods).name == "p")
    }

    /// The cap applies to each object as sent (its bytes in the event or page), not to what is kept.
    @Test func theCapIsOnTheObjectAsSent() throws {
        let object = #"{"metadata":{"name":"p","namespace":"n","resourceVersion":"1","managedFields":[\#(String(repeating: #"{"manager":"x"},"#, count: 200))1]},"spec":{"nodeName":"a"}}"#
        let size = object.utf8.count
        let line = Array(#"{"type":"MODIFIED","object":\#(object)}"#.utf8)
        #expect(try RawWatchEvent.parse(line, expecting: Self.pods, maxObjectBytes: size).name == "p")
        do {
            _ = try RawWatchEvent.parse(line, expecting: Self.pods, maxObjectBytes: size - 1)
            Issue.record("an object over the cap was accepted")
        } catch {
            #expect(error.problem == .tooLarge && error.message.contains("is \(size) bytes"), "\(error)")
        }
        let small = #"{"metadata":{"name":"q","namespace":"n","resourceVersion":"1"}}"#
        let body = Array(#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[\#(small),\#(object)]}"#.utf8)
        #expect(try RawListPage.parse(body, expecting: Self.pods, maxObjectBytes: size).items.count == 2)
        do {
            _ = try RawListPage.parse(body, expecting: Self.pods, maxObjectBytes: size - 1)
            Issue.record("an item over the cap was accepted")
        } catch {
            #expect(error.problem == .tooLarge && error.message.contains("items[1]") && error.message.contains("is \(size) bytes"), "\(error)")
        }
    }

    /// Nodes go the same way.
    @Test func nodeEvents() throws {
        let text = #"{"type":"MODIFIED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","resourceVersion":"5","labels":{"topology.kubernetes.io/zone":"a"}},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}],"images":[{"names":["x"],"sizeBytes":1}],"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"t"}]}}}"#
        let line = Array(text.utf8)
        let want = try Self.reference(line, Self.nodes)
        let got = try RawWatchEvent.parse(line, expecting: Self.nodes)
        #expect(got.object == want.kept && got.name == "n1" && got.resourceVersion == "5")
    }
}
