import Logging
import Synchronization

/// Keeps what a watcher logs, for tests that check what it says (and echoes it to standard
/// error at `echo` and above, so a failing test still shows the story).
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])
    let echo: Logger.Level

    init(echo: Logger.Level = .warning) {
        self.echo = echo
    }

    var logger: Logger {
        Logger(label: "balancer.watch") { _ in Handler(capture: self) }
    }

    func contains(_ parts: String...) -> Bool {
        lines.withLock { $0.contains { line in parts.allSatisfy { line.contains($0) } } }
    }

    func matching(_ part: String) -> [String] {
        lines.withLock { $0.filter { $0.contains(part) } }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        var metadataProvider: Logger.MetadataProvider?

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let meta = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let line = "\(event.level) \(meta) \(event.message)"
            capture.lines.withLock { $0.append(line) }
            if event.level >= capture.echo { print("log: \(line)") }
        }
    }
}
