import ArgumentParser
import Logging
import MapImage

// The enum-valued options, parsed by ArgumentParser from their raw values: a wrong value is a
// usage error that lists the accepted ones, and `--help` and shell completion show them.

/// `--host-mode pod|nodeport` (NodeOptions).
extension HostMode: ExpressibleByArgument {}

/// `--log-level` (LoggingOptions): swift-log's level names.
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `-o text|json` (OutputOption).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, yaml
}
