#if canImport(Glibc)
import Glibc
#endif

/// The wall clock, and its instants written as RFC 3339 in UTC: one writer for the log lines
/// (nanoseconds) and `monitor`'s events (microseconds).
public enum WallTime {
    /// Now (CLOCK_REALTIME), in nanoseconds since the Unix epoch.
    public static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// `2026-12-05T06:05:00.123456789Z` with `digits` fractional digits (6: microseconds, 9:
    /// nanoseconds), truncated.
    public static func rfc3339(nanoseconds ns: Int64, digits: Int) -> String {
        var seconds = time_t(ns / 1_000_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var fraction = ns % 1_000_000_000
        for _ in digits..<9 { fraction /= 10 }
        return "\(pad(Int64(tm.tm_year) + 1900, 4))-\(pad(Int64(tm.tm_mon) + 1, 2))-\(pad(Int64(tm.tm_mday), 2))"
            + "T\(pad(Int64(tm.tm_hour), 2)):\(pad(Int64(tm.tm_min), 2)):\(pad(Int64(tm.tm_sec), 2)).\(pad(fraction, digits))Z"
    }
}
