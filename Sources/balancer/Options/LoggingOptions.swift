import ArgumentParser
import Logging

/// Structured log lines on standard error (`watch`).
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log lines below this level are not written.")
    var logLevel: Logger.Level = .info

    func bootstrap() {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }
}
