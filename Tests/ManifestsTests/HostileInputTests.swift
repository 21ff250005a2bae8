import FoundationEssentials
import Manifests
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every file of fixtures/hostile is an input the compiler must refuse (or, for a few, accept
/// exactly as Kubernetes does), with its expected output next to it in `<file>.expected`: the
/// diagnostics as `balancer compile` prints them. `make golden` (or
/// `BALANCER_REGENERATE_GOLDEN=1 swift test --filter HostileInputTests`) rewrites the expected
/// files; review the diff.
@Suite struct HostileInputTests {
    static let directory = Repo.fixtures + "/hostile"

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { !$0.hasSuffix(".expected") && !$0.hasPrefix(".") }.sorted()
    }

    /// What `balancer compile` prints for the file (paths relative to the repository).
    static func outcome(_ name: String) -> String {
        let path = directory + "/" + name
        let text: String
        do {
            let (snapshot, diagnostics) = try InputLoader.load(paths: [path])
            let objects = snapshot.counts.filter { !$0.key.hasPrefix("skipped/") }.sorted { $0.key < $1.key }
            text = diagnostics.map(\.description).map { $0 + "\n" }.joined()
                + "accepted: " + objects.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "\n"
        } catch {
            text = error.description + "\n"
        }
        return text.replacingOccurrences(of: Repo.root + "/", with: "")
    }

    @Test(arguments: cases)
    func refusedAsExpected(_ name: String) throws {
        let actual = Self.outcome(name)
        let expectedPath = Self.directory + "/" + name + ".expected"
        if ProcessInfo.processInfo.environment["BALANCER_REGENERATE_GOLDEN"] == "1" {
            try actual.write(toFile: expectedPath, atomically: true, encoding: .utf8)
            return
        }
        let expected = readText(expectedPath)
        #expect(expected != nil, "\(expectedPath) missing: run `make golden`")
        guard let expected else { return }
        #expect(actual == expected, "fixtures/hostile/\(name) (run `make golden` and review):\n\(lineDiff(expected: expected, actual: actual))")
    }

    /// Every error line of the corpus is one line with its file and position, and short: a
    /// hostile value can neither forge output nor flood it.
    @Test func messagesStayOneReadableLine() {
        for name in Self.cases {
            for line in Self.outcome(name).split(separator: "\n") {
                #expect(line.utf8.count < 1200, "\(name): \(line.prefix(200))…")
                #expect(!line.unicodeScalars.contains { $0.value < 0x20 }, "\(name): \(line)")
            }
        }
    }

    /// The corpus covers each class the issue names: a class added without a case fails here.
    @Test func everyClassHasCases() {
        let names = Self.cases.joined(separator: " ")
        for needle in ["name-", "namespace-", "label-", "clusterip-", "externalip-", "endpoint-", "lb-ingress-", "pod-ip-",
                       "policy-frontend-", "port-", "tag-", "deep-", "alias-", "list-", "item-", "kind-", "bom."] {
            #expect(names.contains(needle), "no fixtures/hostile case for \(needle)")
        }
    }
}
