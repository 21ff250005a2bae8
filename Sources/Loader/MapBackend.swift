import MapImage

// The map operations the loader's logic needs, as protocols (as NIOCore's Channel is to
// NIOPosix and NIOEmbedded): the kernel implementation (BPFMap and KernelMaps, BPF.swift) and an
// in-memory one (MemoryMaps) run the same Datapath and GenerationWriter code, so the writer's
// decisions (pending deltas, headroom, other writers, rollback, failures half-way) are tested
// without root.

/// One BPF map: a hash or array of records, or a map-in-map whose slots hold other maps.
public protocol MapHandle: AnyObject, Sendable {
    /// What errors name the map by (its pin path, or "<outer>[<slot>]" for an inner map).
    var name: String { get }
    func pin(_ path: String) throws(BPFError)
    func update(key: [UInt8], value: [UInt8]) throws(BPFError)
    func lookup(key: [UInt8], valueSize: Int) throws(BPFError) -> [UInt8]?
    /// Deletes a record; an absent key is not an error.
    func delete(key: [UInt8]) throws(BPFError)
    /// Every key of the map.
    func keys(keySize: Int) throws(BPFError) -> [[UInt8]]
    /// The values of a per-CPU map entry, one per possible CPU.
    func lookupPerCPU(key: [UInt8], valueSize: Int) throws(BPFError) -> [[UInt8]]?
    /// Writes records given as `count` (key, value) pairs laid end to end, as image sections are.
    func updateRecords(_ bytes: ArraySlice<UInt8>, keySize: Int, valueSize: Int) throws(BPFError)
    /// Writes records given as `keys` and `values` laid end to end. A failure names the record;
    /// the records before it are written.
    func updateBatch(keys: [UInt8], values: [UInt8], keySize: Int, valueSize: Int) throws(BPFError)
    /// Deletes the records of `keys` (laid end to end); keys that are absent are skipped.
    func deleteBatch(keys: [UInt8], keySize: Int) throws(BPFError)
    /// Every record of the map: keys and values laid end to end.
    func dump(keySize: Int, valueSize: Int) throws(BPFError) -> (keys: [UInt8], values: [UInt8], count: Int)
    /// The kernel's description of this map: id, capacity and record sizes.
    func info() throws(BPFError) -> (id: UInt32, maxEntries: Int, keySize: Int, valueSize: Int)
    /// Inserts `inner` at `index` of this map-in-map.
    func setInner(_ index: UInt32, _ inner: any MapHandle) throws(BPFError)
    /// The map held at `index` of this map-in-map (nil when the slot is empty).
    func inner(_ index: UInt32) throws(BPFError) -> (any MapHandle)?
    /// The id of the map held at `index` of this map-in-map (nil when the slot is empty).
    func innerID(_ index: UInt32) throws(BPFError) -> UInt32?
}

extension MapHandle {
    /// Whether `index` of this map-in-map holds a map.
    public func hasInner(_ index: UInt32) -> Bool { ((try? innerID(index)) ?? nil) != nil }

    /// The kernel's record sizes of this map.
    public func recordSizes() throws(BPFError) -> (key: Int, value: Int) {
        let i = try info()
        return (i.keySize, i.valueSize)
    }
}

/// A wait for every datapath program that had started when it was called (see GracePeriod).
public protocol GracePeriodWaiting: Sendable {
    func wait() throws(BPFError)
}

/// Where maps come from: pins, creation, and the operations that span several maps.
public protocol MapBackend: Sendable {
    /// Whether `path` is a directory maps can be pinned under (a bpffs); nil when it does not exist.
    func isPinDirectory(_ path: String) -> Bool?
    /// Why the pin directory may not be trusted (PinDirectory), or nil.
    func pinDirectoryRefusal(_ path: String) -> String?
    /// Opens a pinned map.
    func pinned(_ path: String) throws(BPFError) -> any MapHandle
    /// Creates an unpinned, preallocated hash map (an inner map of a generation).
    func createHash(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle
    /// Creates an unpinned longest-prefix-match trie (the service CIDRs of a generation).
    func createLPM(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle
    /// Creates an array map with 32-bit keys (loader-private bookkeeping).
    func createArray(name: String, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle
    /// Sets several map-in-map slots; the first failure is thrown after every update was tried.
    func setInners(_ updates: [(outer: any MapHandle, index: UInt32, inner: any MapHandle)]) throws(BPFError)
    /// A grace-period barrier with maps of its own.
    func gracePeriod() throws(BPFError) -> any GracePeriodWaiting
}
