@testable import KubeAPI
import Manifests
import Testing

/// The watch body: events split at every possible byte, bounded buffering, the event kinds.
@Suite struct WatchStreamTests {
    static let body = """
    {"type":"ADDED","object":{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default","resourceVersion":"101"},"spec":{"clusterIP":"10.96.0.50","clusterIPs":["10.96.0.50"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}}
    {"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"150","annotations":{"k8s.io/initial-events-end":"true"}}}}
    {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 101 (150)","reason":"Expired","code":410}}

    """

    @Test func everySplitPointGivesTheSameEvents() throws {
        let bytes = Array(Self.body.utf8)
        for cut in 0...bytes.count {
            var s = WatchStream()
            var events = try s.feed(bytes[0..<cut])
            events += try s.feed(bytes[cut...])
            try s.finish()
            #expect(events.map(\.type) == [.added, .bookmark, .error], "cut at \(cut)")
            #expect(events.map(\.resourceVersion) == ["101", "150", nil])
            #expect(events.last?.code == 410)
        }
        // One byte at a time.
        var s = WatchStream()
        var n = 0
        for b in bytes { n += try s.feed([b]).count }
        #expect(n == 3 && s.buffered == 0)
    }

    @Test func theObjectDecodesAsAManifest() throws {
        var s = WatchStream()
        let added = try #require(try s.feed(Array(Self.body.utf8)).first)
        let (snapshot, _) = try InputLoader.load(contents: [("watch.json", added.object)])
        #expect(snapshot.services.count == 1)
        #expect(snapshot.services.first?.meta.name == "web")
    }

    @Test func boundsAndBrokenStreams() throws {
        var small = WatchStream(maxLineBytes: 64)
        #expect(throws: WatchStream.Failure.self) { try small.feed(Array(repeating: UInt8(ascii: "x"), count: 65)) }
        var s = WatchStream()
        _ = try s.feed(Array("{\"type\":\"ADDED\",".utf8))
        #expect(throws: WatchStream.Failure.self) { try s.finish() }
        var t = WatchStream()
        #expect(throws: WatchStream.Failure.self) { try t.feed(Array("{\"type\":\"EXPLODED\",\"object\":{}}\n".utf8)) }
        var u = WatchStream()
        #expect(throws: WatchStream.Failure.self) { try u.feed(Array("not json\n".utf8)) }
    }

    /// Found by fuzz/ (watch target): a body ending in a partial keep-alive line with a tab
    /// failed at the end although the same bytes as a whole line are skipped.
    @Test func keepAliveBytesAreTheSameMidStreamAndAtTheEnd() throws {
        for blank in [" ", "\t", "\r", " \t\r"] {
            var whole = WatchStream()
            #expect(try whole.feed(Array((blank + "\n").utf8)).isEmpty)
            try whole.finish()
            var cut = WatchStream()
            #expect(try cut.feed(Array(blank.utf8)).isEmpty)
            #expect(throws: Never.self, "trailing \(blank.debugDescription)") { try cut.finish() }
        }
        var s = WatchStream()
        _ = try s.feed(Array("\t{".utf8))
        #expect(throws: WatchStream.Failure.self) { try s.finish() }
    }
}
