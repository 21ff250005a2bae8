import CLibbpf
import HostSystem
import MapImage

#if canImport(Glibc)
import Glibc
#endif

// The libbpf wrapper layer, with BPFObject.swift the only files of the loader that call libbpf:
// the kernel implementation of MapHandle and MapBackend. Every call returns a typed error
// carrying libbpf's own message; every fd is owned by a BPFMap and closed when it goes away.

/// A failed BPF operation: what was attempted, on what, and the kernel's or libbpf's reason.
public struct BPFError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var target: String
    public var code: Int32
    public var message: String

    init(_ operation: String, _ target: String, _ result: Int32) {
        self.operation = operation
        self.target = target
        code = result < 0 ? -result : result
        var buf = [CChar](repeating: 0, count: 256)
        libbpf_strerror(-code, &buf, buf.count)
        message = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    init(_ operation: String, _ target: String, message: String) {
        self.operation = operation
        self.target = target
        code = 0
        self.message = message
    }

    /// What EPERM and EACCES mean for the loader's calls (libbpf's and mount's).
    static let privilegeHint = "needs root, or CAP_SYS_ADMIN (with it CAP_SYS_PTRACE to reach other processes' network namespaces): docs/deployment.md says what needs what"

    public var description: String {
        var hint = ""
        if code == EPERM || code == EACCES { hint = " (\(BPFError.privilegeHint))" }
        return "\(operation) \(target): \(message)\(hint)"
    }
}

/// An owned BPF map file descriptor.
public final class BPFMap: MapHandle, @unchecked Sendable {
    public let fd: Int32
    public let name: String

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    deinit { close(fd) }

    /// Opens a map pinned on a bpffs.
    public static func pinned(_ path: String) throws(BPFError) -> BPFMap {
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { throw BPFError("open pinned map", path, Int32(fd)) }
        return BPFMap(fd: fd, name: path)
    }

    /// Creates an unpinned hash map (an inner map of a generation).
    public static func createHash(name: String, keySize: Int, valueSize: Int, maxEntries: Int, noPrealloc: Bool) throws(BPFError) -> BPFMap {
        let fd = clibbpf_map_create_hash(name, UInt32(keySize), UInt32(valueSize), UInt32(maxEntries),
                                         noPrealloc ? UInt32(BPF_F_NO_PREALLOC) : 0)
        guard fd >= 0 else { throw BPFError("create map", name, Int32(fd)) }
        return BPFMap(fd: fd, name: name)
    }

    /// Creates an array map (loader-private bookkeeping).
    public static func createArray(name: String, valueSize: Int, maxEntries: Int) throws(BPFError) -> BPFMap {
        let fd = clibbpf_map_create_array(name, UInt32(valueSize), UInt32(maxEntries))
        guard fd >= 0 else { throw BPFError("create map", name, Int32(fd)) }
        return BPFMap(fd: fd, name: name)
    }

    public func pin(_ path: String) throws(BPFError) {
        let r = bpf_obj_pin(fd, path)
        guard r == 0 else { throw BPFError("pin", path, Int32(r)) }
    }

    public func update(key: [UInt8], value: [UInt8]) throws(BPFError) {
        let r = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in bpf_map_update_elem(fd, k.baseAddress, v.baseAddress, UInt64(BPF_ANY)) }
        }
        guard r == 0 else { throw BPFError("update", name, Int32(r)) }
    }

    /// Writes records given as `count` (key, value) pairs laid end to end, as image sections are.
    public func updateRecords(_ bytes: ArraySlice<UInt8>, keySize: Int, valueSize: Int) throws(BPFError) {
        let stride = keySize + valueSize
        let count = bytes.count / stride
        guard count > 0 else { return }
        // Split the interleaved records into the two arrays the batch call takes.
        let keys = [UInt8](unsafeUninitializedCapacity: count * keySize) { kbuf, kcount in
            bytes.withUnsafeBytes { src in
                for j in 0..<count {
                    UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: kbuf[(j * keySize)..<((j + 1) * keySize)]))
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(j * stride)..<(j * stride + keySize)]))
                }
            }
            kcount = count * keySize
        }
        let values = [UInt8](unsafeUninitializedCapacity: count * valueSize) { vbuf, vcount in
            bytes.withUnsafeBytes { src in
                for j in 0..<count {
                    UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: vbuf[(j * valueSize)..<((j + 1) * valueSize)]))
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(j * stride + keySize)..<((j + 1) * stride)]))
                }
            }
            vcount = count * valueSize
        }
        var n = UInt32(count)
        let r = keys.withUnsafeBytes { k in
            values.withUnsafeBytes { v in bpf_map_update_batch(fd, k.baseAddress, v.baseAddress, &n, nil) }
        }
        if r == 0 { return }
        // Kernels without batch support for a map type: one record at a time.
        for j in 0..<count {
            try update(key: Array(keys[(j * keySize)..<((j + 1) * keySize)]), value: Array(values[(j * valueSize)..<((j + 1) * valueSize)]))
        }
    }

    public func lookup(key: [UInt8], valueSize: Int) throws(BPFError) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: valueSize)
        let r = key.withUnsafeBytes { k in value.withUnsafeMutableBytes { v in bpf_map_lookup_elem(fd, k.baseAddress, v.baseAddress) } }
        if r == -ENOENT || (r < 0 && errno == ENOENT) { return nil }
        guard r == 0 else { throw BPFError("lookup", name, Int32(r)) }
        return value
    }

    /// Inserts `inner` at `index` of this map-in-map.
    public func setInner(_ index: UInt32, _ inner: any MapHandle) throws(BPFError) {
        let inner = try BPFMap.kernel(inner)
        var k = index
        var v = UInt32(bitPattern: inner.fd)
        let r = bpf_map_update_elem(fd, &k, &v, UInt64(BPF_ANY))
        guard r == 0 else { throw BPFError("insert \(inner.name) at generation \(index) of", name, Int32(r)) }
    }

    /// A map of this backend (maps of another backend have no file descriptor).
    static func kernel(_ map: any MapHandle) throws(BPFError) -> BPFMap {
        guard let m = map as? BPFMap else { throw BPFError("use", map.name, message: "not a kernel map") }
        return m
    }

    public func delete(key: [UInt8]) throws(BPFError) {
        var k = key
        let r = bpf_map_delete_elem(fd, &k)
        guard r == 0 || r == -ENOENT else { throw BPFError("delete from", name, Int32(r)) }
    }

    /// Sets several map-in-map slots at once; the kernel's grace-period waits overlap (see
    /// clibbpf_set_inners). The first failure is thrown, after every update has been tried.
    public static func setInners(_ updates: [(outer: BPFMap, index: UInt32, inner: BPFMap)]) throws(BPFError) {
        var raw = updates.map { clibbpf_inner_update(outer_fd: $0.outer.fd, key: $0.index, inner_fd: UInt32(bitPattern: $0.inner.fd), result: 0) }
        raw.withUnsafeMutableBufferPointer { clibbpf_set_inners($0.baseAddress, UInt32($0.count)) }
        // The fds must stay open until every thread has finished.
        withExtendedLifetime(updates) {}
        for (u, r) in zip(updates, raw) where r.result != 0 {
            throw BPFError("insert \(u.inner.name) at generation \(u.index) of", u.outer.name, r.result)
        }
    }

    /// Every key of the map (a walk with bpf_map_get_next_key).
    public func keys(keySize: Int) throws(BPFError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var key = [UInt8](repeating: 0, count: keySize)
        var next = [UInt8](repeating: 0, count: keySize)
        var first = true
        while true {
            let r = key.withUnsafeBytes { k in
                next.withUnsafeMutableBytes { n in bpf_map_get_next_key(fd, first ? nil : k.baseAddress, n.baseAddress) }
            }
            if r != 0 {
                if r == -ENOENT || errno == ENOENT { break }
                throw BPFError("walk", name, Int32(r))
            }
            out.append(next)
            key = next
            first = false
        }
        return out
    }

    /// The values of a per-CPU map entry, one per possible CPU.
    public func lookupPerCPU(key: [UInt8], valueSize: Int) throws(BPFError) -> [[UInt8]]? {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw BPFError("count CPUs", name, Int32(cpus)) }
        let stride = (valueSize + 7) / 8 * 8
        guard let all = try lookup(key: key, valueSize: stride * cpus) else { return nil }
        return (0..<cpus).map { Array(all[($0 * stride)..<($0 * stride + valueSize)]) }
    }

    /// The map held at `index` of this map-in-map, opened by id.
    public func inner(_ index: UInt32) throws(BPFError) -> (any MapHandle)? {
        var k = index
        var id: UInt32 = 0
        guard bpf_map_lookup_elem(fd, &k, &id) == 0, id != 0 else { return nil }
        let f = bpf_map_get_fd_by_id(id)
        guard f >= 0 else { throw BPFError("open inner map of", name, Int32(f)) }
        return BPFMap(fd: f, name: "\(name)[\(index)]")
    }

    /// The kernel's description of this map: id, capacity and record sizes.
    public func info() throws(BPFError) -> (id: UInt32, maxEntries: Int, keySize: Int, valueSize: Int) {
        var info = bpf_map_info()
        var len = UInt32(MemoryLayout<bpf_map_info>.size)
        let r = bpf_obj_get_info_by_fd(fd, &info, &len)
        guard r == 0 else { throw BPFError("read info of", name, Int32(r)) }
        return (info.id, Int(info.max_entries), Int(info.key_size), Int(info.value_size))
    }

    /// The id of the map held at `index` of this map-in-map (nil when the slot is empty).
    public func innerID(_ index: UInt32) throws(BPFError) -> UInt32? {
        var k = index
        var id: UInt32 = 0
        let r = bpf_map_lookup_elem(fd, &k, &id)
        if r == -ENOENT || (r < 0 && errno == ENOENT) { return nil }
        guard r == 0 else { throw BPFError("lookup generation \(index) of", name, Int32(r)) }
        return id == 0 ? nil : id
    }

    /// Writes records given as `keys` and `values` laid end to end (batch updates; one record at
    /// a time where the kernel has no batch operation for the map). A failure names the record.
    public func updateBatch(keys: [UInt8], values: [UInt8], keySize: Int, valueSize: Int) throws(BPFError) {
        let count = keys.count / keySize
        guard count > 0 else { return }
        guard values.count == count * valueSize else {
            throw BPFError("batch update", name, message: "\(keys.count) key bytes and \(values.count) value bytes are not \(count) records")
        }
        var n = UInt32(count)
        let r = keys.withUnsafeBytes { k in
            values.withUnsafeBytes { v in bpf_map_update_batch(fd, k.baseAddress, v.baseAddress, &n, nil) }
        }
        if r == 0 { return }
        if n == 0 && BPFMap.noBatchSupport(r) {
            // No batch operation for this map: one record at a time.
            for j in 0..<count {
                try update(key: Array(keys[(j * keySize)..<((j + 1) * keySize)]), value: Array(values[(j * valueSize)..<((j + 1) * valueSize)]))
            }
            return
        }
        throw BPFError("batch update (record \(Int(n) + 1) of \(count)) of", name, Int32(r))
    }

    /// Deletes the records of `keys` (laid end to end); keys that are absent are skipped.
    public func deleteBatch(keys: [UInt8], keySize: Int) throws(BPFError) {
        let count = keys.count / keySize
        var done = 0
        while done < count {
            var n = UInt32(count - done)
            let r = keys.withUnsafeBytes { k in bpf_map_delete_batch(fd, k.baseAddress! + done * keySize, &n, nil) }
            if r == 0 { return }
            if n == 0 && done == 0 && BPFMap.noBatchSupport(r) {
                for j in 0..<count { try delete(key: Array(keys[(j * keySize)..<((j + 1) * keySize)])) }
                return
            }
            done += Int(n)
            if r == -ENOENT {
                // The batch stops at an absent key: step over it.
                done += 1
                continue
            }
            throw BPFError("batch delete (record \(done + 1) of \(count)) from", name, Int32(r))
        }
    }

    /// The kernel's answers for a map type without batch operations (ENOTSUPP is the kernel's
    /// own 524).
    static func noBatchSupport(_ r: Int32) -> Bool { r == -EINVAL || r == -EOPNOTSUPP || r == -524 }

    /// Every record of the map: keys and values laid end to end (batch lookups, or a walk with
    /// get_next_key and a lookup per key where the kernel has no batch operation for the map).
    public func dump(keySize: Int, valueSize: Int) throws(BPFError) -> (keys: [UInt8], values: [UInt8], count: Int) {
        var keys: [UInt8] = [], values: [UInt8] = []
        var chunk = 4096
        var token = [UInt8](repeating: 0, count: max(keySize, 8))
        var next = [UInt8](repeating: 0, count: max(keySize, 8))
        var first = true
        var total = 0
        while true {
            var kbuf = [UInt8](repeating: 0, count: chunk * keySize)
            var vbuf = [UInt8](repeating: 0, count: chunk * valueSize)
            var n = UInt32(chunk)
            let r = kbuf.withUnsafeMutableBytes { k in
                vbuf.withUnsafeMutableBytes { v in
                    token.withUnsafeMutableBytes { t in
                        next.withUnsafeMutableBytes { o in
                            bpf_map_lookup_batch(fd, first ? nil : t.baseAddress, o.baseAddress, k.baseAddress, v.baseAddress, &n, nil)
                        }
                    }
                }
            }
            if r == 0 || r == -ENOENT {
                keys += kbuf.prefix(Int(n) * keySize)
                values += vbuf.prefix(Int(n) * valueSize)
                total += Int(n)
                if r == -ENOENT { return (keys, values, total) }
                token = next
                first = false
                continue
            }
            if r == -ENOSPC && chunk < 1 << 20 {
                // A bucket holds more records than the buffers: larger ones.
                chunk *= 4
                continue
            }
            if first && BPFMap.noBatchSupport(r) {
                for key in try self.keys(keySize: keySize) {
                    guard let value = try lookup(key: key, valueSize: valueSize) else { continue }
                    keys += key
                    values += value
                    total += 1
                }
                return (keys, values, total)
            }
            throw BPFError("batch lookup", name, Int32(r))
        }
    }
}

/// The kernel's maps, through libbpf.
public struct KernelMaps: MapBackend {
    public init() {}

    public func isPinDirectory(_ path: String) -> Bool? { FileSystem.isOn(.bpf, path) }
    public func pinDirectoryRefusal(_ path: String) -> String? { PinDirectory.unsafeReason(path) }
    public func pinned(_ path: String) throws(BPFError) -> any MapHandle { try BPFMap.pinned(path) }

    public func createHash(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        try BPFMap.createHash(name: name, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, noPrealloc: false)
    }

    public func createLPM(name: String, keySize: Int, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        let fd = clibbpf_map_create_lpm(name, UInt32(keySize), UInt32(valueSize), UInt32(maxEntries))
        guard fd >= 0 else { throw BPFError("create map", name, Int32(fd)) }
        return BPFMap(fd: fd, name: name)
    }

    public func createArray(name: String, valueSize: Int, maxEntries: Int) throws(BPFError) -> any MapHandle {
        try BPFMap.createArray(name: name, valueSize: valueSize, maxEntries: maxEntries)
    }

    public func setInners(_ updates: [(outer: any MapHandle, index: UInt32, inner: any MapHandle)]) throws(BPFError) {
        var kernel: [(outer: BPFMap, index: UInt32, inner: BPFMap)] = []
        for u in updates { kernel.append((try BPFMap.kernel(u.outer), u.index, try BPFMap.kernel(u.inner))) }
        try BPFMap.setInners(kernel)
    }

    public func gracePeriod() throws(BPFError) -> any GracePeriodWaiting { try GracePeriod() }
}

/// An RCU grace period on demand, with maps of its own: the kernel waits for one after every
/// update of a map-in-map (so that no program still uses the map replaced), whichever map it is,
/// and BPF programs run inside RCU read-side sections. When `wait` returns, every program that
/// had started before it was called has finished. Updating a private map leaves the datapath's
/// maps alone, so it may run while others write them.
public final class GracePeriod: GracePeriodWaiting {
    let outer: BPFMap
    let inner: BPFMap

    public init() throws(BPFError) {
        inner = try BPFMap.createArray(name: "bl_gp_inner", valueSize: 4, maxEntries: 1)
        let fd = clibbpf_map_create_array_of_maps("bl_gp", inner.fd)
        guard fd >= 0 else { throw BPFError("create map", "bl_gp", Int32(fd)) }
        outer = BPFMap(fd: fd, name: "bl_gp")
    }

    /// Blocks for one grace period.
    public func wait() throws(BPFError) {
        try outer.setInner(0, inner)
    }
}

/// Opens a pinned BPF object (a link): its file descriptor, or a negative errno.
func openPinnedObject(_ path: String) -> Int32 { bpf_obj_get(path) }

/// What the kernel and libbpf offer, asked through libbpf's own probes (`balancer version
/// --check`): each answer is true, false, or nil when the kernel would not say (no privilege).
public enum BPFFeatures {
    /// The version of the libbpf linked, `major.minor` (libbpf reports no patch level).
    public static var libbpfVersion: String { "\(libbpf_major_version()).\(libbpf_minor_version())" }

    public static func hasProgramType(_ type: bpf_prog_type) -> Bool? { answer(libbpf_probe_bpf_prog_type(type, nil)) }

    public static func hasMapType(_ type: bpf_map_type) -> Bool? { answer(libbpf_probe_bpf_map_type(type, nil)) }

    /// Whether the kernel's BTF has the function `name` (a kfunc); false without kernel BTF.
    public static func kernelHas(function name: String) -> Bool { clibbpf_kernel_has_func(name) != 0 }

    private static func answer(_ r: Int32) -> Bool? { r == 1 ? true : r == 0 ? false : nil }
}
