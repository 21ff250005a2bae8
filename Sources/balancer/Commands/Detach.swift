import ArgumentParser
import Loader

struct Detach: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Detach the programs balancer attached to a cgroup and remove their link pins.")

    @Option(help: "The cgroup (v2) directory to detach from.")
    var cgroup: String

    @OptionGroup var pinDir: PinDirOption

    func run() throws {
        let names = try CommandError.wrapping { try Attachment.detach(cgroup: cgroup, pinDir: pinDir.path) }
        print("detached \(names.count) programs from \(cgroup)")
    }
}
