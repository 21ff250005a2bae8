import ArgumentParser
import MapImage

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every table of an image, one line per record, with names next to ids.")

    @OptionGroup var image: ImageArgument

    @OptionGroup var output: OutputOption

    func run() throws {
        let img = try image.load()
        switch output.format {
        case .text: print(TextRenderer.render(img), terminator: "")
        case .json: print(JSONRenderer.render(img), terminator: "")
        case .yaml: print(yamlText(JSONRenderer.render(img)), terminator: "")
        }
    }
}
