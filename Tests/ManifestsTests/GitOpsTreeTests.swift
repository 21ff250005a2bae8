import Foundation
import HostSystem
import Manifests
import Testing

/// A GitOps tree holds more than Kubernetes objects: what is not one is skipped with a note (so one
/// stray file stops neither `compile` nor `watch --dir`), and `--exclude` leaves paths out.
@Suite struct GitOpsTreeTests {
    func tree(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "balancer-gitops-\(UUID().uuidString)"
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileContents.writeAtomically(Array(text.utf8), to: full)
        }
        return root
    }

    static let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}\n"

    @Test func whatIsNotAnObjectIsNotedAndSkipped() throws {
        let root = try tree([
            "kustomization.yaml": "resources: [app/svc.yaml]\n",
            "app/svc.yaml": Self.service,
            "app/settings.yaml": "replicas: 3\nimage: {tag: v1}\n",
            "chart/Chart.yaml": "apiVersion: v2\nname: x\n",
            "chart/templates/x.yaml": "kind: {{ .Values.kind }}\n",
            "scratch/notes.yaml": "a: [\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (snapshot, diagnostics) = try InputLoader.load(paths: [root], limits: InputLimits(exclude: ["scratch"]))
        #expect(snapshot.services.map(\.meta.name) == ["web"])
        let notes = diagnostics.filter { $0.severity == .note }.map(\.description)
        #expect(notes.contains { $0.contains("app/settings.yaml:1:1") && $0.contains("not a Kubernetes object") })
        #expect(notes.contains { $0.contains("kustomization.yaml") && $0.contains("not Kubernetes objects") })
        #expect(notes.contains { $0.contains("/chart") && $0.contains("a Helm chart") })
        #expect(notes.contains { $0.contains("/scratch") && $0.contains("--exclude") })
        #expect(!diagnostics.contains { $0.severity == .error })
    }

    @Test func halfAnIdentityIsStillAnError() throws {
        let root = try tree(["a.yaml": "apiVersion: v1\nmetadata: {name: x}\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: CompileFailure.self) { _ = try InputLoader.load(paths: [root]) }
    }

    @Test func excludePatternsWithASlashMatchThePathBelowTheRoot() throws {
        let root = try tree(["keep/svc.yaml": Self.service, "drop/svc.yaml": Self.service.replacingOccurrences(of: "web", with: "other")])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (snapshot, _) = try InputLoader.load(paths: [root], limits: InputLimits(exclude: ["drop/*.yaml"]))
        #expect(snapshot.services.map(\.meta.name) == ["web"])
    }
}
