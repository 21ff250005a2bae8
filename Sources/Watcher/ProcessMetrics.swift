import FoundationEssentials
import HostSystem

#if canImport(Glibc)
import Glibc
#endif

/// The standard process metrics (process_cpu_seconds_total, process_resident_memory_bytes, …,
/// as the Prometheus client libraries of Go and Python export them and kube-proxy's dashboards
/// read), from /proc/self at scrape time. swift-prometheus has no process collector.
enum ProcessMetrics {
    struct Sample {
        var cpuSeconds: Double
        var virtualBytes: Double
        var residentBytes: Double
        var startTime: Double
        var openFDs: Int
        var maxFDs: Int?
    }

    /// Reads this process's figures; nil without /proc.
    static func sample() -> Sample? {
        guard let stat = try? FileContents.read("/proc/self/stat") else { return nil }
        let text = String(decoding: stat, as: UTF8.self)
        // The command name (field 2) is parenthesised and may hold spaces: fields count from
        // after its closing parenthesis, which is field 3 (state).
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        guard ticks > 0, let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24),
              let boot = bootTime() else { return nil }
        return Sample(cpuSeconds: (utime + stime) / ticks, virtualBytes: vsize, residentBytes: rss * page,
                      startTime: boot + start / ticks, openFDs: (FileSystem.entries("/proc/self/fd")?.count ?? 1) - 1, maxFDs: maxOpenFiles())
    }

    /// When this process started, as Unix time.
    static func startTime() -> Date? { sample().map { Date(timeIntervalSince1970: $0.startTime) } }

    /// `btime` of /proc/stat: when the machine booted.
    static func bootTime() -> Double? {
        guard let data = try? FileContents.read("/proc/stat") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }

    static func maxOpenFiles() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return limit.rlim_cur == rlim_t.max ? nil : Int(limit.rlim_cur)
    }

    /// The Prometheus text of the sample (empty without /proc).
    static func exposition() -> String {
        guard let s = sample() else { return "" }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "\(s.cpuSeconds)")
        metric("process_open_fds", "gauge", "Number of open file descriptors.", "\(s.openFDs)")
        if let m = s.maxFDs { metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(m)") }
        metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(Int64(s.virtualBytes))")
        metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "\(Int64(s.residentBytes))")
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", "\(s.startTime)")
        return out
    }
}
