import Compiler

/// The body of a Kubernetes watch response: one JSON event per line, arriving in chunks that may
/// split a line (or a UTF-8 sequence) anywhere. Lines are framed here with bounded memory: a line
/// longer than `maxLineBytes` is an error (the caller drops the stream and relists) rather than
/// an ever-growing buffer.
public struct WatchStream: Sendable {
    public enum EventType: String, Sendable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR"
    }

    public struct Event: Sendable {
        public var type: EventType
        /// The object's JSON (a Status for ERROR).
        public var object: [UInt8]
        public var resourceVersion: String?
        /// ERROR: the Status code; 410 means the resourceVersion is too old: relist.
        public var code: Int?
        public var namespace: String = ""
        public var name: String?
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let maxLineBytes: Int
    private var pending: [UInt8] = []

    public init(maxLineBytes: Int = 16 << 20) {
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes buffered for an incomplete line.
    public var buffered: Int { pending.count }

    /// The events completed by `chunk`, in order.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws(Failure) -> [Event] {
        var events: [Event] = []
        var start = chunk.startIndex
        var i = start
        while i != chunk.endIndex {
            if chunk[i] == UInt8(ascii: "\n") {
                pending.append(contentsOf: chunk[start..<i])
                if pending.count > maxLineBytes { throw Failure(description: "a watch event of \(pending.count) bytes exceeds \(maxLineBytes)") }
                if !pending.allSatisfy(Self.isKeepAlive) {
                    events.append(try Self.event(pending))
                }
                pending.removeAll(keepingCapacity: pending.capacity <= 1 << 20)
                start = chunk.index(after: i)
            }
            i = chunk.index(after: i)
        }
        pending.append(contentsOf: chunk[start...])
        if pending.count > maxLineBytes { throw Failure(description: "a watch event of more than \(maxLineBytes) bytes") }
        return events
    }

    /// The end of the stream: an incomplete last line is an error (the connection broke mid-event).
    public mutating func finish() throws(Failure) {
        defer { pending.removeAll() }
        if !pending.allSatisfy(Self.isKeepAlive) {
            throw Failure(description: "the stream ended inside an event (\(pending.count) bytes)")
        }
    }

    /// Bytes of a blank (keep-alive) line, skipped whole; the same at the end of the stream, so a
    /// body cut after a partial keep-alive ends cleanly however it was chunked.
    static func isKeepAlive(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\t")
    }

    static func event(_ line: [UInt8]) throws(Failure) -> Event {
        let raw: RawWatchEvent
        do { raw = try RawWatchEvent.parse(line) } catch { throw Failure(description: "malformed watch event: \(error.message)") }
        guard let type = EventType(rawValue: raw.type) else { throw Failure(description: "unknown watch event type \"\(raw.type)\"") }
        return Event(type: type, object: raw.object, resourceVersion: raw.resourceVersion, code: raw.code, namespace: raw.namespace, name: raw.name)
    }
}
