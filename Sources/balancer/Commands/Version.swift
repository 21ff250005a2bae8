import ArgumentParser
import Loader
import MapImage

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What this balancer is: version, commit, image format and datapath ABI, libbpf; with --check, whether this kernel can run the datapath.",
        discussion: """
        An image is loaded only by a balancer of the same image format and datapath ABI (the two \
        numbers printed here and by `inspect`); docs/compatibility.md says when they change. \
        --check examines this host: the kernel version, cgroup v2, the bpf file system, kernel \
        BTF, the program and map types the datapath uses, the bpf_sock_destroy kfunc, and then \
        loads the datapath itself through the verifier (nothing pinned or attached; needs \
        root). Each item is ok, limited (works with less, said why), missing or unknown (could \
        not be asked). Exit status with --check: 0 ready (perhaps with limits), 1 not ready, 2 \
        unknown (run as root to find out).
        """)

    @Flag(help: "Check whether this kernel has what the datapath needs.")
    var check = false

    @OptionGroup var output: OutputOption

    struct Info: Encodable {
        var version: String
        var commit: String
        var imageFormat: Int
        var datapathABI: Int
        var libbpf: String
        var kernelCheck: KernelCheck?
        var verdict: KernelCheck.Verdict?
    }

    func run() throws {
        var info = Info(version: BalancerVersion.string, commit: BalancerVersion.commit,
                        imageFormat: Int(ImageLayout.formatVersion), datapathABI: Int(ABI.version),
                        libbpf: BPFFeatures.libbpfVersion, kernelCheck: nil, verdict: nil)
        if check {
            let c = KernelCheck.run()
            info.kernelCheck = c
            info.verdict = c.verdict
        }
        switch output.format {
        case .json, .yaml:
            try printStructured(info, format: output.format, pretty: true)
        case .text:
            print("balancer \(info.version)")
            print("commit:        \(info.commit)")
            print("image format:  \(info.imageFormat)")
            print("datapath ABI:  \(info.datapathABI)")
            print("libbpf:        \(info.libbpf)")
            if let c = info.kernelCheck { printCheck(c) }
        }
        guard let c = info.kernelCheck else { return }
        switch c.verdict {
        case .ready, .readyWithLimits: return
        case .notReady: throw ExitCode(1)
        case .unknown: throw ExitCode(2)
        }
    }

    private func printCheck(_ c: KernelCheck) {
        print("")
        print("kernel \(c.kernel):")
        let width = c.items.map(\.name.count).max() ?? 0
        for item in c.items {
            let pad = String(repeating: " ", count: width - item.name.count)
            printLine("  \(item.name)\(pad)  \(item.outcome.rawValue.uppercased().padding(7))  \(item.detail)")
        }
        print("")
        switch c.verdict {
        case .ready: print("verdict: ready")
        case .readyWithLimits: print("verdict: ready, with the limits marked LIMITED")
        case .notReady: print("verdict: not ready: " + c.items.filter { $0.outcome == .missing }.map(\.name).joined(separator: ", ") + " missing")
        case .unknown: print("verdict: unknown: " + c.items.filter { $0.outcome == .unknown }.map(\.name).joined(separator: ", ") + " could not be checked (run as root)")
        }
    }
}

private extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
