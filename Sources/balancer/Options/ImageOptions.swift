import ArgumentParser
import HostSystem
import MapImage

/// The image a command reads (`inspect`, `resolve`, `load`, `check-live`).
struct ImageArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The image file; - reads it from standard input.", valueName: "image"))
    var path: String

    func bytes() throws(CommandError) -> [UInt8] { try readImageBytes(path) }

    func load() throws(CommandError) -> MapImage { try loadImage(path) }
}

/// `-o text|json`: how a command prints what it read (`inspect`, `resolve`, `status`).
struct OutputOption: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("text (for reading and diffing), json or yaml.", valueName: "output"))
    var format: OutputFormat = .text
}

/// An image's bytes; `-` is standard input (`balancer compile … -o - | balancer load -`).
func readImageBytes(_ path: String) throws(CommandError) -> [UInt8] {
    do {
        return try FileContents.read(path == "-" ? "/dev/stdin" : path)
    } catch {
        throw CommandError(description: "cannot read image \(PrintableText.escape(error.description))")
    }
}

/// Reads and verifies an image; the error names the file, for a read and a verification failure.
func loadImage(_ path: String) throws(CommandError) -> MapImage {
    let bytes = try readImageBytes(path)
    do {
        return try MapImage(bytes: bytes)
    } catch {
        throw CommandError(description: "\(path == "-" ? "<stdin>" : PrintableText.escape(path)): \(error)")
    }
}
