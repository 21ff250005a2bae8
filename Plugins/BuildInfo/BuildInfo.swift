import Foundation
import PackagePlugin

/// Writes the commit balancer is built from into a C source of `CBuildInfo`, for `balancer
/// version`, the image's OCI labels and `balancer_build_info`.
///
/// A prebuild command, so it runs on every build: the commit (and whether the checkout differs
/// from it) can change with no file of the package changing, which a build command's inputs
/// would not see. commit.sh rewrites the source only when the text differs, so an unchanged
/// commit costs one `git rev-parse` and one `git status`, and no compile.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let repo = context.package.directoryURL
        let out = context.pluginWorkDirectoryURL.appending(path: "generated")
        return [
            .prebuildCommand(
                displayName: "Build info (git commit)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [repo.appending(path: "Plugins/BuildInfo/commit.sh").path, out.appending(path: "build_commit.c").path, repo.path],
                outputFilesDirectory: out
            )
        ]
    }
}
