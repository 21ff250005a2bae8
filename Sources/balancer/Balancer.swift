import ArgumentParser
import MapImage

/// The root: one subcommand per file under Commands/, the options they share under Options/.
/// Async, so that the commands that talk to the API server (`watch`, `snapshot`) await their
/// work on the command's own task; the others run as plain synchronous commands.
@main
struct Balancer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balancer",
        abstract: "Kubernetes service resolution at the socket: compile objects into a map image, inspect and query it.",
        version: "\(BalancerVersion.string) (\(BalancerVersion.commit))",
        subcommands: [Version.self, Compile.self, Sign.self, Verify.self, Inspect.self, Diff.self, Resolve.self, Load.self, Rollback.self, CheckLive.self, Attach.self, Detach.self, Status.self, Monitor.self, Watch.self, SnapshotCommand.self, Push.self, Pull.self]
    )
}
