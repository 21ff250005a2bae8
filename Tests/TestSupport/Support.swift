import FoundationEssentials
import Manifests

#if canImport(Glibc)
import Glibc
#endif

// Shared by the manifest, compiler and API tests (ManifestsTests, CompilerTests, KubeAPITests).

/// Paths of the repository, found from this file's location.
public enum Repo {
    public static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/TestSupport/Support.swift
        return parts.joined(separator: "/")
    }()

    public static var fixtures: String { root + "/fixtures" }
    public static var golden: String { root + "/golden" }

    /// Every fixture case (a folder under fixtures/ with manifests). fixtures/hostile is the
    /// corpus of inputs that must be refused (HostileInputTests), not a case.
    public static var fixtureCases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? []
        return names.filter { name in
            guard name != "hostile" else { return false }
            var st = stat()
            return stat(fixtures + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
    }
}

/// The diagnostics of an input expected to fail to load (InputLoader: reading, parsing, decoding).
public func compileErrors(_ files: [(String, String)]) -> [Diagnostic] {
    do {
        _ = try InputLoader.load(contents: files.map { ($0.0, Array($0.1.utf8)) })
        return []
    } catch {
        return error.diagnostics
    }
}

/// A line diff of two texts, for readable golden failures.
public func lineDiff(expected: String, actual: String) -> String {
    let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let b = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let sa = Set(a), sb = Set(b)
    var out: [String] = []
    for l in a where !sb.contains(l) { out.append("- \(l)") }
    for l in b where !sa.contains(l) { out.append("+ \(l)") }
    return out.isEmpty ? "(same lines, different order)" : out.prefix(80).joined(separator: "\n")
}

public func readText(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

/// A small deterministic random generator, so random inputs and permutations are reproducible.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    public mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
    public mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }
}
