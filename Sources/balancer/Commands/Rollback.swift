import ArgumentParser
import Loader

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make the previous generation live again, in one flip.")

    @OptionGroup var pinDir: PinDirOption

    func run() throws {
        let generation = try CommandError.wrapping { try Datapath(pinDir: pinDir.path).rollback() }
        print("generation \(generation) live")
    }
}
