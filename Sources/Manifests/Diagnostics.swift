/// One finding of a compile: an input error (the compile fails), a warning (the input is used,
/// but not all of it), or a note (something skipped on purpose, e.g. an SCTP port).
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Comparable {
        case error, warning, note

        var rank: Int {
            switch self {
            case .error: 0
            case .warning: 1
            case .note: 2
            }
        }

        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    public var severity: Severity
    public var file: String?
    public var line: Int
    public var column: Int
    /// "Service default/web"; empty for file-level problems.
    public var object: String
    /// "spec.ports[1].port"; empty when the problem is the whole object.
    public var field: String
    public var message: String
    /// The node's child-index path inside its file, to find line:column in a JSON file later.
    var treePath: [Int]?

    public init(_ severity: Severity, file: String?, line: Int = 0, column: Int = 0, object: String = "", field: String = "", message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.object = object
        self.field = field
        self.message = message
    }

    /// `file:line:column: error: Service default/web: spec.ports[1].port: message`
    public var description: String {
        var s = ""
        if let file {
            s += file
            if line > 0 { s += ":\(line):\(column)" }
            s += ": "
        }
        s += "\(severity): "
        if !object.isEmpty { s += "\(object): " }
        if !field.isEmpty { s += "\(field): " }
        // One line, whatever the input held: a path, object name or field with a newline or an
        // escape sequence cannot forge another line or the terminal's state.
        return escapedLine(s + message)
    }

    /// File, position, then severity, object, field and message: the order messages are printed in.
    public static func order(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        if (a.file ?? "", a.line, a.column) != (b.file ?? "", b.line, b.column) {
            return (a.file ?? "", a.line, a.column) < (b.file ?? "", b.line, b.column)
        }
        return (a.severity.rank, a.object, a.field, a.message) < (b.severity.rank, b.object, b.field, b.message)
    }
}

/// All the errors of a failed compile, reported together.
public struct CompileFailure: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String {
        let errs = errors.count
        return diagnostics.map(\.description).joined(separator: "\n") + "\n\(errs) error\(errs == 1 ? "" : "s"); no image written"
    }
}
