import ArgumentParser
import Loader

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach every datapath program to a cgroup, through bpf_links pinned in the pin dir.",
        discussion: """
        Loads the datapath object built into balancer, reusing the maps pinned under PIN-DIR/maps \
        (pinning them on first use; PIN-DIR is created on a bpffs, which is mounted on its parent \
        when absent). The links are pinned under PIN-DIR/links, so the programs stay attached when \
        no balancer process runs. Attaching again is a no-op. The cgroup is always explicit.
        """)

    @Option(help: "The cgroup (v2) directory to attach to.")
    var cgroup: String

    @OptionGroup var pinDir: PinDirOption

    func run() throws {
        let r = try CommandError.wrapping { try Attachment.attach(cgroup: cgroup, pinDir: pinDir.path) }
        print("attached \(r.attached.count) programs to \(cgroup)" + (r.alreadyAttached.isEmpty ? "" : "; \(r.alreadyAttached.count) already attached"))
    }
}
