import Foundation
import PackagePlugin

/// Compiles the datapath (bpf/programs/balancer.bpf.c and the headers of bpf/) into the C array
/// that `CBalancerBPF` links into the balancer binary, in the plugin's work directory.
///
/// The object is a build product rather than a file in the tree, so `swift build` alone always
/// embeds the object of the sources it builds, and a datapath that does not compile fails the
/// build instead of leaving an older object in place. Every C source and header under bpf/ is an
/// input of the command, so an edit reruns it. SwiftPM lists the inputs when it plans the build and
/// plans again when a file appears or vanishes under a target's directory: bpf/ is the directory of
/// the CBalancerABI target, so a header added there is an input from the next build on.
/// bpf/programs/build.sh then compiles only when the digest of what the compiler reads changed,
/// and rewrites the generated C only when its bytes did (no relink otherwise).
///
/// The compiler is the Swift toolchain's clang (bpf/programs/build.sh says why that one): SwiftPM
/// finds it in the toolchain that runs the build. Generated C sources in a C target need the
/// manifest's `experimentalCGen` feature (SwiftPM 6.3); the alternative, a generated Swift array
/// literal of the 90 KB object, costs 8 s of CPU to type-check in a debug build and 18 s in a
/// release build, against 0.1 s for the C array.
@main
struct BPFObject: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let bpf = context.package.directoryURL.appending(path: "bpf")
        let script = bpf.appending(path: "programs/build.sh")
        let clang: URL
        do {
            clang = try context.tool(named: "clang").url
        } catch {
            throw BPFObjectError(message: "no clang in the Swift toolchain, which compiles the datapath (\(error)); "
                + "install the Swift toolchain from swift.org (e.g. under /opt/swift)")
        }
        let work = context.pluginWorkDirectoryURL
        let embedded = work.appending(path: "object.c")
        return [
            .buildCommand(
                displayName: "Datapath bpf/programs/balancer.bpf.c",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, "-e", embedded.path, work.appending(path: "balancer.bpf.o").path],
                environment: ["BL_TOOLCHAIN_BIN": clang.deletingLastPathComponent().path],
                inputFiles: [script] + (try datapathSources(under: bpf)),
                outputFiles: [embedded]
            )
        ]
    }

    /// Every C source and header under bpf/ but the host-side tests and the kernel test scripts,
    /// which are not part of the object.
    private func datapathSources(under bpf: URL) throws -> [URL] {
        let skipped = ["programs/hosttest", "programs/e2e"].map { bpf.appending(path: $0).standardizedFileURL.path }
        guard let walk = FileManager.default.enumerator(at: bpf, includingPropertiesForKeys: nil) else {
            throw BPFObjectError(message: "cannot list \(bpf.path)")
        }
        var sources: [URL] = []
        for case let url as URL in walk {
            let path = url.standardizedFileURL.path
            if skipped.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
                walk.skipDescendants()
                continue
            }
            if url.pathExtension == "c" || url.pathExtension == "h" { sources.append(url) }
        }
        return sources.sorted { $0.path < $1.path }
    }
}

struct BPFObjectError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
