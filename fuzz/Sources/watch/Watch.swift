import Manifests

// Target 4: the watch stream (Sources/KubeAPI/WatchStream.swift, compiled into this target with
// the wire parsers WireJSON.swift and Trim.swift, so that nothing of NIO is built) and the API
// wire parsers.
//
// Input: 4 bytes that seed the chunking and the line limit, then the body of a watch response.
// The body is fed in random chunks (array slices, so indices do not start at 0) and the result
// is checked against a plain reference: split at '\n', skip blank lines, parse each line on its
// own. The events before a failure must be those, the failure must come exactly when the
// reference fails (a bad line, or a line longer than the limit), and the end of the stream must
// fail exactly when it holds an unfinished line. Each event's object must be JSON the manifest
// reader accepts. The same body then goes through RawListPage.parse, the Status message reader
// and the Pod trimmer.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWatch(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    guard input.count >= 4 else { return 0 }
    var rng = SplitMix(seed: UInt64(input[0]) | UInt64(input[1]) << 8 | UInt64(input[2]) << 16)
    let limit = input[3] < 128 ? 16 << 20 : 16 + Int(input[3]) * 4
    let body = Array(input[4...])
    let maxChunk = 1 + Int(rng.next() % 97)

    let reference = Reference(body, limit: limit)
    var stream = WatchStream(maxLineBytes: limit)
    var events: [WatchStream.Event] = []
    var failed = false
    var at = 0
    while at < body.count {
        let n = min(body.count - at, Int(rng.next() % UInt64(maxChunk + 1)))  // 0: an empty chunk
        do {
            events += try stream.feed(body[at..<(at + n)])
        } catch {
            failed = true
            break
        }
        at += n
    }
    check(events.count <= reference.events.count, "\(events.count) events, the reference has \(reference.events.count)")
    for (e, r) in zip(events, reference.events) {
        check(e.type == r.type && e.object == r.object && e.resourceVersion == r.resourceVersion && e.code == r.code
              && e.namespace == r.namespace && e.name == r.name, "event differs from the reference's: \(e) vs \(r)")
        check((try? ManifestReader.parseJSON(e.object, file: "event")) != nil, "an event's object is not JSON: \(show(e.object))")
    }
    check(failed == reference.failed, failed ? "the stream failed, the reference did not" : "the reference failed, the stream did not")
    if !failed {
        check(events.count == reference.events.count, "\(events.count) events, the reference has \(reference.events.count)")
        let ended: Bool
        do { try stream.finish(); ended = true } catch { ended = false }
        check(ended == !reference.unfinished, ended ? "an unfinished last line was accepted" : "the end of the stream failed with no unfinished line")
        check(stream.buffered == 0, "finish left \(stream.buffered) bytes buffered")
    }

    // The same body as a list page of Pods, checked against its resource.
    if let page = try? RawListPage.parse(body, expecting: WireResource(kind: "Pod", apiVersion: "v1", namespaced: true),
                                         maxObjectBytes: limit) {
        for item in page.items {
            check((try? ManifestReader.parseJSON(item.object, file: "item")) != nil, "a list item is not JSON: \(show(item.object))")
            _ = trimmedJSON(item.object, kind: "Pod")
        }
    }
    _ = kubernetesStatusMessage(body)
    let trimmed = trimmedJSON(body, kind: "Pod")
    if trimmed != body {
        check((try? ManifestReader.parseJSON(trimmed, file: "pod")) != nil, "a trimmed Pod is not JSON: \(show(trimmed))")
    }
    return 0
}

/// What the framer must produce, computed line by line.
struct Reference {
    var events: [WatchStream.Event] = []
    var failed = false
    var unfinished = false

    init(_ body: [UInt8], limit: Int) {
        var start = 0
        for (i, b) in body.enumerated() where b == 0x0A {
            let line = Array(body[start..<i])
            start = i + 1
            if line.count > limit { failed = true; return }
            if line.allSatisfy(Self.isBlank) { continue }
            guard let raw = try? RawWatchEvent.parse(line), let type = WatchStream.EventType(rawValue: raw.type) else {
                failed = true
                return
            }
            events.append(WatchStream.Event(type: type, object: raw.object, resourceVersion: raw.resourceVersion, code: raw.code,
                                            namespace: raw.namespace, name: raw.name))
        }
        if body.count - start > limit { failed = true; return }
        unfinished = !body[start...].allSatisfy(Self.isBlank)
    }

    /// A line of only these is a keep-alive, not an event.
    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0D || b == 0x09 }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
