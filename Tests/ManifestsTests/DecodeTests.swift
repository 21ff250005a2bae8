import FoundationEssentials
import Manifests
import MapImage
import TestSupport
import Testing

let serviceYAML = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20]
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
"""

/// Input errors: each names file, line:column, object and field path; every error of a run is
/// reported; no partial result.
@Suite struct DecodeErrorTests {
    @Test func yamlSyntaxErrorHasItsPosition() {
        let errors = compileErrors([("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   bad: [\n")])
        #expect(errors.count == 1)
        let e = errors.first
        #expect(e?.file == "bad.yaml")
        #expect((e?.line ?? 0) >= 4)
        #expect(e?.description.hasPrefix("bad.yaml:") == true)
    }

    @Test func wrongTypeNamesTheField() {
        let yaml = serviceYAML.replacingOccurrences("    port: 80\n", "    port: \"80\"\n")
        let errors = compileErrors([("svc.yaml", yaml)])
        #expect(errors.count == 1)
        #expect(errors.first?.object == "Service shop/web")
        #expect(errors.first?.field == "spec.ports[0].port")
        #expect(errors.first?.line == 11)
        #expect(errors.first?.column == 11)
        #expect(errors.first?.message.contains("expected an integer, found string \"80\"") == true)
        #expect(errors.first?.description == "svc.yaml:11:11: error: Service shop/web: spec.ports[0].port: expected an integer, found string \"80\"")
    }

    @Test func missingRequiredField() {
        let errors = compileErrors([("s.yaml", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s1\nendpoints: []\n")])
        #expect(errors.map(\.field) == ["addressType"])
        #expect(errors.first?.message == "required field is missing")
        let noName = compileErrors([("n.yaml", "apiVersion: v1\nkind: Node\nmetadata:\n  labels: {}\n")])
        #expect(noName.map(\.field) == ["metadata.name"])
    }

    @Test func invalidIPAndPort() {
        let yaml = serviceYAML.replacingOccurrences("clusterIPs: [10.96.0.20]", "clusterIPs: [10.96.0.300]")
            .replacingOccurrences("    port: 80\n", "    port: 70000\n")
        let errors = compileErrors([("svc.yaml", yaml)])
        #expect(errors.count == 2)
        #expect(errors.contains { $0.field == "spec.clusterIPs[0]" && $0.message.contains("invalid IP address \"10.96.0.300\"") })
        #expect(errors.contains { $0.field == "spec.ports[0].port" && $0.message.contains("invalid port 70000") })
    }

    @Test func duplicateObjectNamesBothPlaces() {
        let errors = compileErrors([("a.yaml", serviceYAML), ("b/c.yaml", "---\n" + serviceYAML)])
        #expect(errors.count == 1)
        #expect(errors.first?.file == "b/c.yaml")
        #expect(errors.first?.line == 2)
        #expect(errors.first?.message == "duplicate object: already defined at a.yaml:1:1")
    }

    @Test func allErrorsOfARunAreReported() {
        let bad1 = serviceYAML.replacingOccurrences("    port: 80\n", "    port: -1\n")
        let bad2 = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nstatus:\n  addresses:\n  - type: InternalIP\n    address: not-an-ip\n"
        let bad3 = "{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\",\n \"metadata\": {\"name\": \"x\"},\n \"addressType\": 4}\n"
        let errors = compileErrors([("1.yaml", bad1), ("2.yaml", bad2), ("3.json", bad3)])
        #expect(errors.map(\.file) == ["1.yaml", "2.yaml", "3.json"])
    }

    @Test func jsonErrorsGetALineAndColumn() {
        let json = """
        {
          "apiVersion": "v1",
          "kind": "Service",
          "metadata": {"name": "web", "namespace": "shop"},
          "spec": {
            "clusterIP": "10.96.0.20",
            "ports": [{"name": "http", "port": "80", "protocol": "TCP"}]
          }
        }
        """
        let errors = compileErrors([("svc.json", json)])
        #expect(errors.count == 1)
        #expect(errors.first?.line == 7)
        #expect(errors.first?.field == "spec.ports[0].port")
        let syntax = compileErrors([("x.json", "{\"a\": 1,,}")])
        #expect(syntax.first?.line == 1)
        #expect((syntax.first?.column ?? 0) > 0)
    }

    @Test func nonObjectDocument() {
        let errors = compileErrors([("x.yaml", "- a\n- b\n")])
        #expect(errors.first?.message.contains("expected a Kubernetes object") == true)
    }
}

/// Scalars are typed by the schema, not guessed.
@Suite struct ScalarTypingTests {
    func service(_ portLines: String, extra: String = "") throws -> Service? {
        let yaml = """
        apiVersion: v1
        kind: Service
        metadata: {name: s, namespace: d}
        spec:
          clusterIP: 10.96.0.1
        \(extra)  ports:
        \(portLines)
        """
        let (snap, _) = try InputLoader.load(contents: [("s.yaml", Array(yaml.utf8))])
        return snap.services.first
    }

    @Test func quotedDigitsInIntOrStringStayAString() {
        // targetPort "0123" is a string: an invalid port name, not port 123 or 83.
        let errs = compileErrors([("s.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.96.0.1\n  ports:\n  - port: 80\n    targetPort: \"0123\"\n")])
        #expect(errs.first?.field == "spec.ports[0].targetPort")
        #expect(errs.first?.message.contains("invalid targetPort \"0123\"") == true)
    }

    @Test func plainLeadingZeroIsAmbiguous() {
        let errs = compileErrors([("s.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.96.0.1\n  ports:\n  - port: 0123\n")])
        #expect(errs.first?.message.contains("ambiguous integer \"0123\"") == true)
    }

    @Test func namedTargetPortYesStaysAString() throws {
        let s = try service("  - port: 80\n    targetPort: yes\n")
        #expect(s?.ports.first?.targetPort == .string("yes"))
        let t = try service("  - port: 80\n    targetPort: 8080\n")
        #expect(t?.ports.first?.targetPort == .int(8080))
    }

    @Test func booleanYesIsRefused() {
        let errs = compileErrors([("s.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.96.0.1\n  publishNotReadyAddresses: yes\n  ports:\n  - port: 80\n")])
        #expect(errs.first?.message.contains("ambiguous boolean \"yes\"") == true)
    }

    @Test func nullMeansAbsent() throws {
        let s = try service("  - port: 80\n    targetPort: null\n", extra: "  sessionAffinity: ~\n")
        #expect(s?.ports.first?.targetPort == nil)
        #expect(s?.affinityTimeout == nil)
    }

    @Test func portNameLooksLikeABooleanButIsAString() throws {
        let s = try service("  - port: 80\n    name: on\n")
        #expect(s?.ports.first?.name == "on")
    }

    @Test func affinityTimeoutDefault() throws {
        let s = try service("  - port: 80\n", extra: "  sessionAffinity: ClientIP\n")
        #expect(s?.affinityTimeout == 10800)
        let t = try service("  - port: 80\n", extra: "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n")
        #expect(t?.affinityTimeout == 60)
    }
}

@Suite struct InputShapeTests {
    @Test func listWrappersAndSkippedKinds() throws {
        let list = """
        {"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
         "items": [{"metadata": {"name": "a", "namespace": "n"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}]}
        """
        let yaml = """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: cm}
        - apiVersion: apps/v1
          kind: Deployment
          metadata: {name: d}
        - apiVersion: v1
          kind: Service
          metadata: {name: b, namespace: n}
          spec: {clusterIP: 10.96.0.2, ports: [{port: 81}], unknownField: {x: 1}}
        """
        let (snap, _) = try InputLoader.load(contents: [("l.json", Array(list.utf8)), ("l.yaml", Array(yaml.utf8))])
        #expect(snap.services.map(\.meta.name).sorted() == ["a", "b"])
        #expect(snap.counts["Service"] == 2)
        #expect(snap.counts["skipped/ConfigMap"] == 1)
        #expect(snap.counts["skipped/Deployment"] == 1)
    }

    @Test func symlinkCyclesAreWalkedOnce() throws {
        let dir = "/tmp/balancer-walk-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/a/loop", withDestinationPath: dir)
        FileManager.default.createFile(atPath: dir + "/a/svc.yaml", contents: Data(serviceYAML.utf8))
        let files = try InputLoader.expand([dir])
        #expect(files == [dir + "/a/svc.yaml"])
    }

    @Test func directoriesAreReadRecursively() throws {
        let files = try InputLoader.expand([Repo.fixtures + "/clusterip-basic"])
        #expect(!files.isEmpty)
        #expect(files.allSatisfy { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") })
        #expect(throws: CompileFailure.self) { try InputLoader.expand(["/nonexistent/path"]) }
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
