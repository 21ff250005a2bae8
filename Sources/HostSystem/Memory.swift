import CHostSystem

/// The process's heap, for the long-running watcher that holds a whole cluster: fewer allocator
/// arenas (every core decodes, and each thread's arena otherwise keeps what it freed), and freed
/// memory handed back after a full compile's temporary peak.
public enum ProcessMemory {
    /// Caps the C allocator's arenas (glibc M_ARENA_MAX); call before threads start allocating.
    public static func limitArenas(_ count: Int) {
        chost_limit_malloc_arenas(Int32(count))
    }

    /// Returns freed heap memory to the system (malloc_trim).
    public static func releaseFree() {
        chost_release_free_memory()
    }
}
