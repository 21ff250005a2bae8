import ArgumentParser
import MapImage

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changes between two images, per service and node.",
        discussion: "Exit status: 0 when the images are identical, 1 when they differ, 2 on error.")

    @Argument(help: "The old image.")
    var old: String

    @Argument(help: "The new image.")
    var new: String

    func run() throws {
        let a: MapImage, b: MapImage
        do {
            a = try loadImage(old)
            b = try loadImage(new)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let diff = ImageDiff(old: a, new: b)
        print(diff.render(), terminator: "")
        if !diff.isEmpty { throw ExitCode(1) }
    }
}
