import Manifests
import FoundationEssentials
import HostSystem
import MapImage

/// Writes to standard error (Swift 6 forbids touching the C `stderr` global).
func printError(_ s: String) {
    StandardError.write(s.hasSuffix("\n") ? s : s + "\n")
}

/// Prints one line of text output with the image's (or the host's) strings in it escaped, so
/// that it stays one line (PrintableText).
func printLine(_ s: String) {
    print(PrintableText.escape(s))
}

/// Prints a value as JSON with sorted keys, escaped as `printLine` escapes text (PrintableText).
func printJSON(_ value: some Encodable, pretty: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    print(PrintableText.escapeJSON(String(decoding: try encoder.encode(value), as: UTF8.self)))
}

/// `-o json` or `-o yaml` of the same value (YAML: a document per value, `---` first, so a
/// stream of them, as `monitor` prints, reads as one YAML stream).
func printStructured(_ value: some Encodable, format: OutputFormat, pretty: Bool = false) throws {
    guard format == .yaml else { return try printJSON(value, pretty: pretty) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(yamlText(String(decoding: try encoder.encode(value), as: UTF8.self)), terminator: "")
}

/// YAML of a JSON text; the JSON itself if it cannot be read (it always can: our encoder's).
func yamlText(_ json: String) -> String {
    "---\n" + (YAMLOutput.fromJSON(json) ?? json + "\n")
}

/// A runtime failure (not a usage mistake): printed as `Error: …`, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String

    /// Runs `body`; its failure becomes a CommandError in the failure's own words, after `prefix`.
    static func wrapping<T>(_ prefix: String = "", _ body: () throws -> T) throws(CommandError) -> T {
        do {
            return try body()
        } catch {
            throw CommandError(description: prefix + "\(error)")
        }
    }
}

/// `3 records`, `1 record`: a count with its noun in the number it needs.
func counted(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
}

/// `a=1 b=2`: a table of counts in key order, on one line.
func keyValues(_ counts: [String: some CustomStringConvertible]) -> String {
    counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
}


/// The one JSON line of `--timings` on standard error, fields in the order they were added
/// (the bench scripts read it).
struct TimingsLine {
    private var fields: [String] = []

    mutating func add(_ key: String, _ value: some CustomStringConvertible) {
        fields.append("\"\(key)\":\(value)")
    }

    mutating func add(_ key: String, seconds duration: Duration) {
        add(key, duration.inSeconds)
    }

    func print() {
        printError("{" + fields.joined(separator: ",") + "}")
    }
}
