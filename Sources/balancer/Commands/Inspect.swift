import ArgumentParser
import MapImage

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every table of an image, one line per record, with names next to ids.")

    @OptionGroup var image: ImageArgument

    @OptionGroup var output: OutputOption

    func run() throws {
        let img = try image.load()
        print(output.format == .text ? TextRenderer.render(img) : JSONRenderer.render(img), terminator: "")
    }
}
