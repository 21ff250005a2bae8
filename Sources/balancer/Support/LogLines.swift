import ArgumentParser
import HostSystem
import Logging
import MapImage

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format`: lines for people, or JSON lines for log pipelines.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

/// One log line per event on standard error, written with one write(2) so lines of concurrent
/// tasks never interleave.
///
/// JSON is Kubernetes components' JSON format (component-base/logs/json) as log pipelines parse
/// it: one object per line, `ts` first, then `level`, `logger`, `msg`, then the event's fields at
/// the top level; a field named like one of those four is written as `field.<name>`. `ts` is RFC
/// 3339 with nanoseconds in UTC (the issue's and Cilium's choice over Kubernetes' float epoch,
/// which loses nanoseconds in float64). Text is `ts level logger: msg key=value …` with a value
/// quoted (JSON string syntax) when it is empty or holds a space, a quote, `=` or a control
/// character, so a line splits back into its fields.
struct LineLogHandler: LogHandler {
    var format: LogFormat
    var label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let line = Self.line(format: format, time: Self.now(), level: event.level, label: label, message: "\(event.message)", fields: fields)
        StandardError.write(line)
    }

    static let reserved: Set<String> = ["ts", "level", "logger", "msg"]

    static func line(format: LogFormat, time: String, level: Logger.Level, label: String, message: String, fields: Logger.Metadata) -> String {
        let sorted = fields.sorted { $0.key < $1.key }
        switch format {
        case .json:
            var out = "{\"ts\":\"\(time)\",\"level\":\"\(level.rawValue)\",\"logger\":\(CanonicalJSONWriter.quoted(label)),\"msg\":\(CanonicalJSONWriter.quoted(message))"
            for (key, value) in sorted {
                out += "," + CanonicalJSONWriter.quoted(reserved.contains(key) ? "field." + key : key) + ":" + json(value)
            }
            return PrintableText.escapeJSON(out + "}") + "\n"
        case .text:
            var out = "\(time) \(level.rawValue) \(PrintableText.escape(label)): \(PrintableText.escape(message))"
            for (key, value) in sorted { out += " \(PrintableText.escape(key))=\(textValue("\(value)"))" }
            return out + "\n"
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): CanonicalJSONWriter.quoted(s)
        case .stringConvertible(let c): CanonicalJSONWriter.quoted(c.description)
        case .array(let a): "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.sorted { $0.key < $1.key }.map { CanonicalJSONWriter.quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// A value as it is, or JSON-quoted; either way with no character a terminal acts on
    /// (PrintableText).
    static func textValue(_ s: String) -> String {
        let plain = !s.isEmpty && !s.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F }
        return plain ? PrintableText.escape(s) : PrintableText.escapeJSON(CanonicalJSONWriter.quoted(s))
    }

    /// RFC 3339 in UTC with nanoseconds: `2026-12-05T06:05:00.123456789Z`.
    static func now() -> String { WallTime.rfc3339(nanoseconds: WallTime.nowNanoseconds(), digits: 9) }
}
