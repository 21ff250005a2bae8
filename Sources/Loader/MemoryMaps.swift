import CBalancerABI
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// BPF maps in memory, with the kernel's rules that the loader depends on: capacities (a full
/// hash refuses a new key with E2BIG), record sizes, fixed array indexes, map-in-map slots that
/// accept only maps like their template, ids that change when a slot gets a new map. As
/// NIOEmbedded runs channel handlers without sockets, it runs Datapath and GenerationWriter
/// without root or a kernel, in tests.
///
/// Every change is logged (`events`), in order, and `failing` makes a chosen operation fail
/// with an errno, so that tests can see what a write did and stop it half-way.
public final class MemoryMaps: MapBackend {
    struct State {
        var pins: [String: MemoryMap] = [:]
        var directories: Set<String> = []
        var nextID: UInt32 = 1
        var events: [String] = []
        var failing: (@Sendable (String) -> Int32?)?
        var gracePeriodSeconds: Double
    }

    let state: Mutex<State>

    public init(gracePeriodSeconds: Double = 0.002) {
        state = Mutex(State(gracePeriodSeconds: gracePeriodSeconds))
    }

    /// How long a grace period takes (readers to leave), from the next one on; long enough to
    /// tell a writer that waits for it from one that does not.
    public var gracePeriodSeconds: Double {
        get { state.withLock { $0.gracePeriodSeconds } }
        set { state.withLock { $0.gracePeriodSeconds = newValue } }
    }

    /// What happened, in order: "update bl_config", "create bl_g1_1" (generation 1's frontends),
    /// "fill batch update bl_g1_1" (before it is published), "insert bl_frontends[1]",
    /// "batch update bl_g1_1", "grace period", …
    public var events: [String] { state.withLock { $0.events } }

    public func clearEvents() { state.withLock { $0.events = [] } }

    /// Makes the operations whose event `fail` answers an errno for fail with it (after logging
    /// them as "FAILED <event>"); nil makes every operation succeed again.
    public func failing(_ fail: (@Sendable (String) -> Int32?)?) { state.withLock { $0.failing = fail } }

    /// Logs an operation, or throws the failure chosen for it.
    func perform(_ event: String, on target: String) throws(BPFError) {
        let failure: Int32? = state.withLock { s in
            if let code = s.failing?(event) {
                s.events.append("FAILED " + event)
                return code
            }
            s.events.append(event)
            return nil
        }
        if let failure { throw BPFError(event, target, -failure) }
    }

    func newID() -> UInt32 { state.withLock { s in defer { s.nextID += 1 }; return s.nextID } }

    /// Pins what `balancer attach` pins under `pinDir/maps`: the outer map of each image table
    /// (two generation slots, empty), bl_config, bl_counters and bl_skip.
    public func attach(pinDir: String) throws(BPFError) {
        state.withLock { _ = $0.directories.insert(pinDir) }
        for (table, name) in Datapath.outerNames {
            let template = MemoryMap(backend: self, name: name, kind: .hash, keySize: ABI.keySize(table), valueSize: ABI.valueSize(table),
                                     maxEntries: 1)
            try MemoryMap(backend: self, name: name, kind: .arrayOfMaps(template), keySize: 4, valueSize: 4, maxEntries: 2)
                .pin("\(pinDir)/maps/\(name)")
        }
        try MemoryMap(backend: self, name: "bl_config", kind: .array, keySize: 4, valueSize: MemoryLayout<bl_config>.size, maxEntries: 1)
            .pin("\(pinDir)/maps/bl_config")
        try MemoryMap(backend: self, name: "bl_counters", kind: .perCPUHash(cpus: 2), keySize: 4, valueSize: MemoryLayout<bl_counters>.size,
                      maxEntries: Int(BL_MAX_FRONTENDS)).pin("\(pinDir)/maps/bl_counters")
        try MemoryMap(backend: self, name: "bl_skip", kind: .hash, keySize: MemoryLayout<bl_skip_key>.size,
                      valueSize: MemoryLayout<bl_skip_value>.size, maxEntries: 65536).pin("\(pinDir)/maps/bl_skip")
    }

    /// Removes a pin: a datapath an earlier version attached lacks the maps added since.
    public func unpin(_ path: String) {
        state.withLock { _ = $0.pins.removeValue(forKey: path) }
    }

    // MARK: MapBackend

    public func isPinDirectory(_ path: String) -> Bool? { state.withLock { $0.directories.contains(path) } ? true : nil }
    /// In-memory maps have no owner or mode: nothing to refuse.
    public func pinDirectoryRefusal(_ path: String) -> String? { nil }

    public func pinned(_ path: String) throws(BPFError) -> any MapHandle {
        guard let map = state.withLock({ $0.pins[path] }) else { throw BPFError("open pinned map", path, -ENOENT) }
        return map
    }

    public func createHash(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        try perform("create \(name)", on: name)
        return MemoryMap(backend: self, name: name, kind: .hash, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries)
    }

    /// Exact keys, as a hash: the loader only writes, deletes and reads back whole records.
    public func createLPM(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        try createHash(name: name, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries)
    }

    public func createArray(name: String, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        try perform("create \(name)", on: name)
        return MemoryMap(backend: self, name: name, kind: .array, keySize: 4, valueSize: valueSize, maxEntries: maxEntries)
    }

    public func setInners(_ updates: [(outer: any MapHandle, index: UInt32, inner: any MapHandle)]) throws(BPFError) {
        var first: BPFError?
        for u in updates {
            do { try u.outer.setInner(u.index, u.inner) } catch { first = first ?? error }
        }
        if let first { throw first }
    }

    public func gracePeriod() throws(BPFError) -> any GracePeriodWaiting {
        try perform("create grace period", on: "bl_gp")
        return MemoryGracePeriod(backend: self)
    }
}

struct MemoryGracePeriod: GracePeriodWaiting {
    let backend: MemoryMaps

    func wait() throws(BPFError) {
        usleep(UInt32(backend.gracePeriodSeconds * 1e6))
        try backend.perform("grace period", on: "bl_gp")
    }
}

/// One map of MemoryMaps.
public final class MemoryMap: MapHandle {
    enum Kind: Sendable {
        case hash, array
        case perCPUHash(cpus: Int)
        /// Slots accept maps with the template's record sizes.
        case arrayOfMaps(MemoryMap)
    }

    struct Contents {
        var records: [[UInt8]: [UInt8]] = [:]
        var perCPU: [[UInt8]: [[UInt8]]] = [:]
        var inners: [UInt32: MemoryMap] = [:]
    }

    let backend: MemoryMaps
    public let name: String
    let kind: Kind
    let keySize: Int
    let valueSize: Int
    let maxEntries: Int
    let id: UInt32
    let contents = Mutex(Contents())
    /// Pinned or held by a map-in-map: what programs and other loaders can see. Writes to other
    /// maps are logged as "fill …".
    let reachable = Mutex(false)

    init(backend: MemoryMaps, name: String, kind: Kind, keySize: Int, valueSize: Int, maxEntries: Int) {
        self.backend = backend
        self.name = name
        self.kind = kind
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        id = backend.newID()
    }

    /// Arrays have every index below their capacity, and no other.
    private var arrayIndexLimit: Int? {
        switch kind {
        case .array, .arrayOfMaps: maxEntries
        default: nil
        }
    }

    private func check(_ key: [UInt8], _ value: [UInt8]?, _ operation: String) throws(BPFError) {
        guard key.count == keySize, value.map({ $0.count == valueSize }) ?? true else {
            throw BPFError(operation, name, message: "\(key.count)+\(value?.count ?? 0) bytes for a map of \(keySize)+\(valueSize)")
        }
        if let limit = arrayIndexLimit, Int(UInt32(littleEndian: key.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })) >= limit {
            throw BPFError(operation, name, -E2BIG)
        }
    }

    /// A write's event: "update bl_config", or "fill batch update bl_g1_1" for a map nothing
    /// can reach yet.
    private func event(_ operation: String) -> String {
        (reachable.withLock { $0 } ? "" : "fill ") + "\(operation) \(name)"
    }

    private func store(_ key: [UInt8], _ value: [UInt8]) throws(BPFError) {
        let full: Bool = contents.withLock { c in
            if case .hash = kind, c.records[key] == nil, c.records.count >= maxEntries { return true }
            c.records[key] = value
            return false
        }
        if full { throw BPFError("update", name, -E2BIG) }
    }

    // MARK: test access

    /// Sets a per-CPU entry (what the datapath's counters do).
    public func setPerCPU(key: [UInt8], values: [[UInt8]]) {
        contents.withLock { $0.perCPU[key] = values }
    }

    /// Records held (of a hash or array written so far).
    public var count: Int { contents.withLock { $0.records.count } }

    // MARK: MapHandle

    public func pin(_ path: String) throws(BPFError) {
        let taken: Bool = backend.state.withLock { s in
            if s.pins[path] != nil { return true }
            s.pins[path] = self
            return false
        }
        if taken { throw BPFError("pin", path, -EEXIST) }
        reachable.withLock { $0 = true }
    }

    public func update(key: [UInt8], value: [UInt8]) throws(BPFError) {
        try check(key, value, "update")
        try backend.perform(event("update"), on: name)
        try store(key, value)
    }

    public func lookup(key: [UInt8], valueSize: Int) throws(BPFError) -> [UInt8]? {
        let value = contents.withLock { $0.records[key] }
        if value == nil, arrayIndexLimit != nil {
            return key.count == keySize ? [UInt8](repeating: 0, count: self.valueSize) : nil
        }
        return value
    }

    public func delete(key: [UInt8]) throws(BPFError) {
        if arrayIndexLimit != nil { throw BPFError("delete from", name, -EINVAL) }
        try backend.perform(event("delete"), on: name)
        _ = contents.withLock { $0.records.removeValue(forKey: key) }
    }

    public func keys(keySize: Int) throws(BPFError) -> [[UInt8]] {
        contents.withLock { (c: inout Contents) -> [[UInt8]] in
            if case .perCPUHash = kind { return Array(c.perCPU.keys) }
            if let limit = arrayIndexLimit { return (0..<UInt32(limit)).map { arrayKey($0) } }
            return Array(c.records.keys)
        }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    public func lookupPerCPU(key: [UInt8], valueSize: Int) throws(BPFError) -> [[UInt8]]? {
        contents.withLock { $0.perCPU[key] }
    }

    public func updateRecords(_ bytes: ArraySlice<UInt8>, keySize: Int, valueSize: Int) throws(BPFError) {
        let stride = keySize + valueSize
        var keys: [UInt8] = [], values: [UInt8] = []
        var at = bytes.startIndex
        while at + stride <= bytes.endIndex {
            keys += bytes[at..<(at + keySize)]
            values += bytes[(at + keySize)..<(at + stride)]
            at += stride
        }
        try updateBatch(keys: keys, values: values, keySize: keySize, valueSize: valueSize)
    }

    public func updateBatch(keys: [UInt8], values: [UInt8], keySize: Int, valueSize: Int) throws(BPFError) {
        let count = keys.count / keySize
        guard count > 0 else { return }
        for j in 0..<count {
            let key = Array(keys[(j * keySize)..<((j + 1) * keySize)])
            let value = Array(values[(j * valueSize)..<((j + 1) * valueSize)])
            do throws(BPFError) {
                try check(key, value, "batch update")
                try backend.perform(event("batch update"), on: name)
                try store(key, value)
            } catch {
                guard error.code != 0 else { throw error }
                throw BPFError("batch update (record \(j + 1) of \(count)) of", name, -error.code)
            }
        }
    }

    public func deleteBatch(keys: [UInt8], keySize: Int) throws(BPFError) {
        for j in 0..<(keys.count / keySize) { try delete(key: Array(keys[(j * keySize)..<((j + 1) * keySize)])) }
    }

    public func dump(keySize: Int, valueSize: Int) throws(BPFError) -> (keys: [UInt8], values: [UInt8], count: Int) {
        let records = contents.withLock { $0.records }
        var keys: [UInt8] = [], values: [UInt8] = []
        for (k, v) in records {
            keys += k
            values += v
        }
        return (keys, values, records.count)
    }

    public func info() throws(BPFError) -> (id: UInt32, maxEntries: Int, keySize: Int, valueSize: Int) {
        (id, maxEntries, keySize, valueSize)
    }

    public func setInner(_ index: UInt32, _ inner: any MapHandle) throws(BPFError) {
        guard case .arrayOfMaps(let template) = kind, let m = inner as? MemoryMap else {
            throw BPFError("insert \(inner.name) at generation \(index) of", name, -EINVAL)
        }
        guard Int(index) < maxEntries else { throw BPFError("insert \(inner.name) at generation \(index) of", name, -E2BIG) }
        // The kernel's check of an inner map against the outer map's template.
        guard m.keySize == template.keySize, m.valueSize == template.valueSize else {
            throw BPFError("insert \(inner.name) at generation \(index) of", name, -EINVAL)
        }
        try backend.perform("insert \(name)[\(index)]", on: name)
        contents.withLock { $0.inners[index] = m }
        m.reachable.withLock { $0 = true }
    }

    public func inner(_ index: UInt32) throws(BPFError) -> (any MapHandle)? {
        contents.withLock { $0.inners[index] }
    }

    public func innerID(_ index: UInt32) throws(BPFError) -> UInt32? {
        contents.withLock { $0.inners[index]?.id }
    }
}
