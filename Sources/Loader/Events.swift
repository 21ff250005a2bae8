import CBalancerABI
import CLibbpf
import MapImage

#if canImport(Glibc)
import Glibc
#endif

/// Why a decision did not translate, or handed a connect on to the next rule (enum bl_reason):
/// the label of balancer_decision_reasons_total and of a monitor's events.
public enum DecisionReason: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case unknownPort = 1, noEndpoints, noNodePort, noLocalEndpoint, noUsableBackend, rateLimited, fromBackend

    public var description: String {
        switch self {
        case .unknownPort: "unknown_port"
        case .noEndpoints: "no_endpoints"
        case .noNodePort: "no_nodeport"
        case .noLocalEndpoint: "no_local_endpoint"
        case .noUsableBackend: "no_usable_backend"
        case .rateLimited: "rate_limited"
        case .fromBackend: "from_backend"
        }
    }
}

/// One decision of the datapath, as `balancer monitor` receives it (struct bl_event).
public struct DecisionEvent: Sendable {
    public enum Kind: UInt8, Sendable, CustomStringConvertible {
        case translate = 1, reject, unreachable, passedOn, terminated

        public var description: String {
            switch self {
            case .translate: "translate"
            case .reject: "reject"
            case .unreachable: "unreachable"
            case .passedOn: "fall-through"
            case .terminated: "terminated"
            }
        }
    }

    public var timeNs: UInt64
    public var kind: Kind
    public var proto: TransportProtocol
    public var destination: SocketAddress
    /// The address written (translate) or the socket's backend (terminated).
    public var backend: SocketAddress?
    public var origin: RuleOrigin?
    public var ownerID: UInt32
    public var frontendID: UInt32
    public var backendID: UInt32
    public var reason: DecisionReason?
    public var fellThrough, rateLimited, fromBackend, sendmsg, ipv6Socket: Bool
    public var pid: UInt32
    public var command: String
    public var cgroupID: UInt64
    public var netnsCookie: UInt64
    public var socketCookie: UInt64

    /// nil for a record this version cannot read (an unknown kind or protocol).
    init?(_ e: bl_event) {
        guard let kind = Kind(rawValue: e.kind), let proto = TransportProtocol(rawValue: e.proto) else { return nil }
        func address(_ bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8),
                     _ portBE: UInt16) -> SocketAddress? {
            let raw = withUnsafeBytes(of: bytes) { Array($0) }
            return IPAddress(bytes: raw[...]).map { SocketAddress(address: $0, port: UInt16(bigEndian: portBE)) }
        }
        guard let dst = address(e.dst, e.dst_port_be) else { return nil }
        timeNs = e.time_ns
        self.kind = kind
        self.proto = proto
        destination = dst
        backend = kind == .translate || kind == .terminated ? address(e.backend, e.backend_port_be) : nil
        origin = RuleOrigin(rawValue: e.origin)
        ownerID = e.owner_id
        frontendID = e.frontend_id
        backendID = e.backend_id
        reason = DecisionReason(rawValue: UInt32(e.reason))
        let flags = UInt32(e.flags)
        fellThrough = flags & UInt32(BL_EVENT_FELL_THROUGH.rawValue) != 0
        rateLimited = flags & UInt32(BL_EVENT_RATE_LIMITED.rawValue) != 0
        fromBackend = flags & UInt32(BL_EVENT_FROM_BACKEND.rawValue) != 0
        sendmsg = flags & UInt32(BL_EVENT_SENDMSG.rawValue) != 0
        ipv6Socket = flags & UInt32(BL_EVENT_IPV6_SOCKET.rawValue) != 0
        pid = e.pid
        command = withUnsafeBytes(of: e.comm) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        cgroupID = e.cgroup_id
        netnsCookie = e.netns_cookie
        socketCookie = e.socket_cookie
    }

    /// Events laid end to end as the ring buffer hands them over; unreadable ones are skipped.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> [DecisionEvent] {
        let size = MemoryLayout<bl_event>.size
        return stride(from: 0, to: bytes.count - bytes.count % size, by: size).compactMap {
            DecisionEvent(bytes.loadUnaligned(fromByteOffset: $0, as: bl_event.self))
        }
    }
}

/// A listener of the datapath's decision events: turns them on (bl_monitor) while it lives and
/// reads the ring buffer (bl_events) with libbpf. One listener at a time: a second one would take
/// a share of the events.
public final class EventMonitor {
    private let events: BPFMap
    private let monitor: BPFMap
    /// Events the datapath could not queue (the ring full), when the map exists.
    private let lost: BPFMap?
    private var ring: OpaquePointer?
    /// Where libbpf's callback copies records: on the heap, because libbpf keeps the pointer for
    /// every later poll (a Swift property's address is only valid during one call).
    private let sink: UnsafeMutablePointer<clibbpf_events>
    private let buffer: UnsafeMutableRawBufferPointer
    /// The until_ns this listener last wrote.
    private var armedUntil: UInt64 = 0
    /// Records read but not delivered (another size, or beyond a poll's buffer).
    public var dropped: UInt64 { UInt64(sink.pointee.dropped) }

    /// Opens the pinned ring buffer and switch of the datapath under `pinDir`.
    public init(pinDir: String) throws(BPFError) {
        do {
            events = try BPFMap.pinned("\(pinDir)/maps/bl_events")
            monitor = try BPFMap.pinned("\(pinDir)/maps/bl_monitor")
            lost = try? BPFMap.pinned("\(pinDir)/maps/bl_events_lost")
        } catch {
            throw BPFError("open the event maps of", pinDir, message: "\(error.message); attach with this version of balancer first")
        }
        // Twice what the ring holds: one poll never has more to hand over.
        let capacity = 2 * Int(BL_EVENTS_BYTES)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 8)
        sink = UnsafeMutablePointer<clibbpf_events>.allocate(capacity: 1)
        sink.initialize(to: clibbpf_events())
        sink.pointee.buf = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
        sink.pointee.cap = capacity
        sink.pointee.record = MemoryLayout<bl_event>.size
    }

    deinit {
        if let ring { ring_buffer__free(ring) }
        sink.deallocate()
        buffer.deallocate()
    }

    /// Events the datapath could not queue since it was attached (the ring buffer was full: a
    /// listener too slow for the rate of decisions), summed over CPUs.
    public func lostEvents() -> UInt64 {
        guard let lost, let perCPU = try? lost.lookupPerCPU(key: arrayKey(0), valueSize: 8) else { return 0 }
        return perCPU.reduce(0) { $0 &+ UInt64(littleEndian: structValue(UInt64(0), $1)) }
    }

    /// The CLOCK_MONOTONIC time bpf_ktime_get_ns reads.
    public static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// When another listener has the events on (until_ns in the future, not written by this one).
    public func otherListenerUntil() throws(BPFError) -> UInt64? {
        let now = EventMonitor.monotonicNow()
        guard let bytes = try monitor.lookup(key: arrayKey(0), valueSize: 8) else { return nil }
        let until = UInt64(littleEndian: structValue(UInt64(0), bytes))
        return until > now && until != armedUntil ? until : nil
    }

    /// Turns the events on for `seconds` from now (call again before they end to keep them on).
    public func arm(seconds: Double) throws(BPFError) {
        let until = EventMonitor.monotonicNow() + UInt64(seconds * 1e9)
        try monitor.update(key: arrayKey(0), value: structBytes(until.littleEndian))
        armedUntil = until
    }

    /// Turns the events off, unless another listener has turned them on since.
    public func disarm() {
        guard armedUntil != 0, let bytes = try? monitor.lookup(key: arrayKey(0), valueSize: 8),
              UInt64(littleEndian: structValue(UInt64(0), bytes)) == armedUntil else { return }
        try? monitor.update(key: arrayKey(0), value: structBytes(UInt64(0)))
        armedUntil = 0
    }

    /// The events that arrive within `timeoutMs` (fewer when none come).
    public func poll(timeoutMs: Int32) throws(BPFError) -> [DecisionEvent] {
        if ring == nil {
            guard let r = clibbpf_ringbuf_open(events.fd, sink) else { throw BPFError("open the ring buffer", events.name, -errno) }
            ring = r
        }
        sink.pointee.len = 0
        let r = ring_buffer__poll(ring, timeoutMs)
        if r < 0 && r != -EINTR { throw BPFError("read the ring buffer", events.name, r) }
        return DecisionEvent.decode(UnsafeRawBufferPointer(start: buffer.baseAddress, count: sink.pointee.len))
    }
}
