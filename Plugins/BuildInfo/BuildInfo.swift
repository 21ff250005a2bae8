import Foundation
import PackagePlugin

/// Writes the commit balancer is built from into a C source of `CBuildInfo`, for `balancer
/// version`, the image's OCI labels and `balancer_build_info`.
///
/// A build command whose inputs are what a commit, a checkout or an edit changes: git's HEAD,
/// index, packed refs and the branch's ref file, and every file under Sources/, bpf/ and
/// Plugins/ with Package.swift (for `-dirty`). A prebuild command would be simpler, but SwiftPM
/// runs one only when it plans the build again, so a commit with no source change kept the
/// previous commit's text. commit.sh rewrites the source only when the text differs: an
/// unchanged commit costs one `git rev-parse` and one `git status`, and no compile.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let repo = context.package.directoryURL
        let out = context.pluginWorkDirectoryURL.appending(path: "build_commit.c")
        return [
            .buildCommand(
                displayName: "Build info (git commit)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [repo.appending(path: "Plugins/BuildInfo/commit.sh").path, out.path, repo.path],
                inputFiles: gitFiles(repo) + sourceFiles(repo),
                outputFiles: [out]
            )
        ]
    }

    /// The files of the git directory that a commit, checkout or `git add` changes; none outside
    /// a checkout (a source tarball builds as `unknown`).
    private func gitFiles(_ repo: URL) -> [URL] {
        func git(_ args: String...) -> [String] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", repo.path] + args
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return [] }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return [] }
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        let dirs = git("rev-parse", "--absolute-git-dir", "--git-common-dir", "--symbolic-full-name", "HEAD")
        guard dirs.count >= 2 else { return [] }
        let gitDir = URL(fileURLWithPath: dirs[0])
        let common = dirs[1].hasPrefix("/") ? URL(fileURLWithPath: dirs[1]) : repo.appending(path: dirs[1])
        var files = [gitDir.appending(path: "HEAD"), gitDir.appending(path: "index"), common.appending(path: "packed-refs")]
        if dirs.count > 2, dirs[2].hasPrefix("refs/") { files.append(common.appending(path: dirs[2])) }
        return files.filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    private func sourceFiles(_ repo: URL) -> [URL] {
        var files = [repo.appending(path: "Package.swift")]
        for dir in ["Sources", "bpf", "Plugins"] {
            guard let walk = FileManager.default.enumerator(at: repo.appending(path: dir), includingPropertiesForKeys: [.isRegularFileKey]) else { continue }
            for case let url as URL in walk where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                files.append(url)
            }
        }
        return files.sorted { $0.path < $1.path }
    }
}
