/// The body of a Kubernetes watch response: one JSON event per line, arriving in chunks that may
/// split a line (or a UTF-8 sequence) anywhere. Lines are framed here with bounded memory: a line
/// longer than `maxLineBytes` is an error (the caller drops the stream and relists) rather than
/// an ever-growing buffer. With `expecting`, every event is checked against the resource watched
/// (RawWatchEvent.parse): an object of another kind or without its identity is an error.
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
        /// ERROR: the Status (code, reason, message).
        public var status: WireStatus?
        /// When its line was complete: what the watcher's per-event costs are measured from.
        public var received: ContinuousClock.Instant = .now
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// What was wrong; nil when the stream broke (ended inside an event).
        public var problem: WireError.Problem?

        public init(description: String, problem: WireError.Problem? = nil) {
            self.description = description
            self.problem = problem
        }
    }

    public let maxLineBytes: Int
    public let expecting: WireResource?
    /// Objects larger than this are refused (the line cap leaves room for the event's envelope).
    public let maxObjectBytes: Int
    private var pending: [UInt8] = []

    public init(maxLineBytes: Int = 16 << 20, expecting: WireResource? = nil, maxObjectBytes: Int = .max) {
        self.maxLineBytes = maxLineBytes
        self.expecting = expecting
        self.maxObjectBytes = maxObjectBytes
    }

    /// Bytes buffered for an incomplete line.
    public var buffered: Int { pending.count }

    /// The events completed by `chunk`, in order.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws(Failure) -> [Event] {
        var events: [Event] = []
        do {
            try feed(chunk) { (e: Event) throws(Never) -> Bool in
                events.append(e)
                return true
            }
        } catch let f as Failure {
            throw f
        } catch {
            // Only Failure is thrown when `body` cannot throw.
            throw Failure(description: "\(error)")
        }
        return events
    }

    /// Hands each event completed by `chunk` to `body` as soon as it is parsed (a chunk often
    /// holds many: none waits for the parsing of those after it); stops when `body` says false.
    /// Returns false when stopped.
    @discardableResult
    public mutating func feed<E: Error>(_ chunk: some Collection<UInt8>, each body: (Event) throws(E) -> Bool) throws -> Bool {
        var start = chunk.startIndex
        var i = start
        while i != chunk.endIndex {
            if chunk[i] == UInt8(ascii: "\n") {
                pending.append(contentsOf: chunk[start..<i])
                if pending.count > maxLineBytes { throw tooLong(pending.count) }
                if !pending.allSatisfy(Self.isKeepAlive) {
                    let e = try event(pending)
                    pending.removeAll(keepingCapacity: pending.capacity <= 1 << 20)
                    start = chunk.index(after: i)
                    if try !body(e) {
                        pending.append(contentsOf: chunk[start...])
                        return false
                    }
                } else {
                    pending.removeAll(keepingCapacity: pending.capacity <= 1 << 20)
                    start = chunk.index(after: i)
                }
            }
            i = chunk.index(after: i)
        }
        pending.append(contentsOf: chunk[start...])
        if pending.count > maxLineBytes { throw tooLong(nil) }
        return true
    }

    private func tooLong(_ n: Int?) -> Failure {
        Failure(description: "a watch event of \(n.map { "\($0) bytes" } ?? "more than \(maxLineBytes) bytes"), longer than the cap of \(maxLineBytes) "
                    + "(an object at the object cap and its event's envelope)", problem: .tooLarge)
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

    func event(_ line: [UInt8]) throws(Failure) -> Event {
        let received = ContinuousClock.now
        let raw: RawWatchEvent
        do {
            raw = try RawWatchEvent.parse(line, expecting: expecting, maxObjectBytes: maxObjectBytes)
        } catch {
            throw Failure(description: error.problem == .malformed ? "malformed watch event: \(error.message)" : error.message, problem: error.problem)
        }
        guard let type = EventType(rawValue: raw.type) else {
            throw Failure(description: "unknown watch event type \"\(raw.type.prefix(40))\"", problem: .malformed)
        }
        return Event(type: type, object: raw.object, resourceVersion: raw.resourceVersion, code: raw.code, namespace: raw.namespace, name: raw.name,
                     status: raw.status, received: received)
    }
}
