// The watcher's wire reading of Pods, alone: RawWatchEvent.parse of one kubectl-like Pod event
// and RawListPage.parse of a page of them, timed in a loop (bench/README.md, "Wire").
// Usage: wire-bench EVENT_LINE_FILE [ITERATIONS]
import Foundation
import KubeAPI

let args = CommandLine.arguments
guard args.count >= 2, let data = FileManager.default.contents(atPath: args[1]) else {
    FileHandle.standardError.write(Data("usage: wire-bench EVENT_LINE_FILE [ITERATIONS]\n".utf8))
    exit(2)
}
let iterations = args.count > 2 ? Int(args[2]) ?? 20000 : 20000
nonisolated(unsafe) var line = Array(data)
while line.last == UInt8(ascii: "\n") { line.removeLast() }
nonisolated(unsafe) let pods = KubeResource.pods.wire

func time(_ what: String, _ n: Int, bytes: Int, _ body: () throws -> Void) rethrows {
    let start = ContinuousClock.now
    for _ in 0..<n { try body() }
    let d = ContinuousClock.now - start
    let us = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    print(String(format: "%@: %.2f us each, %.0f MB/s (%d bytes, %d runs)", what, us / Double(n), Double(bytes * n) / us, bytes, n))
}

/// One event every 10 ms, as a watcher idle between kubelet updates sees them (cold caches).
func paced(_ n: Int) throws {
    var samples: [Double] = []
    for _ in 0..<n {
        usleep(10_000)
        let start = ContinuousClock.now
        _ = try RawWatchEvent.parse(line, expecting: pods)
        let d = ContinuousClock.now - start
        samples.append(Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6)
    }
    samples.sort()
    print(String(format: "event, one per 10 ms: p50 %.1f us, p99 %.1f us (%d events)", samples[n / 2], samples[n * 99 / 100], n))
}

do {
    try paced(300)
    try time("event", iterations, bytes: line.count) { _ = try RawWatchEvent.parse(line, expecting: pods) }
    // A page of 500 Pods, as a list response carries them.
    let text = String(decoding: line, as: UTF8.self)
    guard let start = text.range(of: "\"object\":")?.upperBound else { throw WireError(.malformed, "no object in the event") }
    let object = String(text[start...].dropLast())
    let page = Array(("{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"9\"},\"items\":["
        + Array(repeating: object, count: 500).joined(separator: ",") + "]}").utf8)
    try time("page of 500", max(1, iterations / 500), bytes: page.count) { _ = try RawListPage.parse(page, expecting: pods) }
} catch {
    FileHandle.standardError.write(Data("wire-bench: \(error)\n".utf8))
    exit(1)
}
