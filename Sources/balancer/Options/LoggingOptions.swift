import ArgumentParser
import Logging

/// Log lines on standard error (`watch`): LineLogHandler says their two formats.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log lines below this level are not written.")
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("text (ts level logger: message key=value …) or json (one object per line: ts, level, logger, msg, fields).",
                               valueName: "format"))
    var logFormat: LogFormat = .text

    func bootstrap() {
        let level = logLevel, format = logFormat
        LoggingSystem.bootstrap { label in
            var h = LineLogHandler(format: format, label: label)
            h.logLevel = level
            return h
        }
    }
}
