import ArgumentParser
import Loader
import MapImage

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an image into the datapath's pinned maps: fill the standby generation, then flip.",
        discussion: """
        The image is verified completely before any map is touched. The standby generation gets new \
        tables, then one update of bl_config makes it live; the previous generation stays as the \
        rollback target. The datapath's maps must be pinned under PIN-DIR/maps (`balancer attach` \
        does that). Loading the live image again changes nothing.
        """)

    @OptionGroup var image: ImageArgument

    @OptionGroup var trust: TrustOptions

    @OptionGroup var pinDir: PinDirOption

    @OptionGroup var nodeOptions: NodeOptions

    @OptionGroup var hostCluster: HostClusterOption

    @Flag(help: "Print one JSON line of per-step timings to standard error.")
    var timings = false

    @OptionGroup var netns: NetnsScopeOption

    @OptionGroup var terminate: TerminateOption

    func run() throws {
        let node = nodeOptions.name
        let clock = ContinuousClock()
        let t0 = clock.now
        let bytes = try image.bytes()
        // Before the datapath is opened: a refused image touches nothing.
        let signer = try trust.check(bytes, imagePath: image.path)
        let t1 = clock.now
        do {
            let datapath = try Datapath(pinDir: pinDir.path)
            // loadBalancerSourceRanges: the client addresses of every namespace, written before
            // the flip so that no client is refused for want of them (cleared when the image has
            // none; a datapath an older version attached has no map for them).
            var rangesNote = ""
            let ranged = ((try? ImageDecoder.decodeLayout(bytes))?.sections.first { $0.kind == ImageTable.sourceRanges.rawValue }?.count ?? 0) > 0
            if ranged {
                let scope = try netns.scope(pinDir: pinDir.path)
                let cr = try datapath.syncClientAddresses(scope: scope)
                rangesNote = "; loadBalancerSourceRanges: the addresses of \(counted(cr.entries, "network namespace")) under \(scope)"
            }
            let report = try datapath.load(imageBytes: bytes, host: nodeOptions.settings(cluster: hostCluster.name))
            if !ranged { _ = try? datapath.syncClientAddresses(scope: "", wanted: false) }
            // After the flip: a terminated socket's reconnect goes through the new image.
            var termination: Datapath.TerminationReport?
            if !report.unchanged && terminate.terminateSockets != .none {
                termination = datapath.terminateStaleSockets(terminate.terminateSockets, scope: try netns.scope(pinDir: pinDir.path))
            }
            if timings {
                var line = TimingsLine()
                line.add("read_seconds", seconds: t1 - t0)
                for (phase, seconds) in report.phases { line.add("\(phase.replacingOccurrences(of: " ", with: "_"))_seconds", seconds) }
                if let termination {
                    line.add("terminate_seconds", termination.seconds)
                    line.add("terminated_sockets", termination.total)
                }
                line.add("total_seconds", seconds: clock.now - t0)
                line.print()
            }
            let counts = keyValues(report.records)
            var skipNote = ""
            if node != nil {
                let scope = try netns.scope(pinDir: pinDir.path)
                let sr = try datapath.syncSkips(report.skipTargets, scope: scope)
                if !report.skipTargets.isEmpty {
                    skipNote = "; skipRedirectFromBackend: \(counted(sr.entries, "namespace entry", "namespace entries")) (\(counted(sr.namespacesVisited, "namespace")) searched under \(scope))"
                    if !sr.unmatched.isEmpty { skipNote += ", no namespace holds \(sr.unmatched.map(\.description).joined(separator: " "))" }
                }
            }
            skipNote += rangesNote
            if let signer { skipNote += "; signature valid (\(PrintableText.escape(signer)))" }
            if let t = termination {
                skipNote += "; terminated \(t.counts) sockets on removed backends "
                    + "(\(counted(t.namespaces, "network namespace")) searched)"
                for note in t.notes { skipNote += "; \(note)" }
            }
            if report.unchanged {
                print("generation \(report.generation) already live with this image (sha256 \(report.digestHex)): nothing changed\(skipNote)")
            } else {
                print("generation \(report.generation) live: sha256 \(report.digestHex); \(counts)\(skipNote)")
            }
        } catch let error as LoadError {
            switch error {
            case .image, .node: throw CommandError(description: "\(PrintableText.escape(image.path)): \(error)")
            default: break
            }
            throw CommandError(description: error.description)
        } catch {
            throw CommandError(description: "\(error)")
        }
    }
}
