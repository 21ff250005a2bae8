@testable import Compiler
@testable import Manifests
import MapImage

// Target 2: the whole input path, InputLoader.load(contents:), which splits a file, parses the
// pieces with libyaml or jansson and decodes every object. The input is loaded once as a .yaml
// file and once as a .json file. Then, as the compile command would, a snapshot that loads is
// compiled and encoded, and the encoder's image must verify.
//
// Checked besides crashes: a file the loader accepts is one its parser accepts whole (the
// splitter and any rewriting before parsing must not make a bad file good), and every
// diagnostic's position lies inside the file.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLoader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    load(bytes, path: "in.yaml")
    load(bytes, path: "in.json")
    return 0
}

func load(_ bytes: [UInt8], path: String) {
    let snapshot: Snapshot
    let diagnostics: [Diagnostic]
    do {
        (snapshot, diagnostics) = try InputLoader.load(contents: [(path: path, bytes: bytes)])
    } catch {
        checkPositions(error.diagnostics, bytes, path)
        return
    }
    checkPositions(diagnostics, bytes, path)
    let json = path.hasSuffix(".json")
    do {
        _ = json ? try ManifestReader.parseJSON(bytes, file: path) : try ManifestReader.parseYAML(bytes, file: path)
    } catch {
        violated("\(path) loads, but does not parse whole: \(error) — input \(show(bytes))")
    }
    let result = Compiler.compile(snapshot, inputDiagnostics: diagnostics)
    let image = ImageEncoder.encode(result.contents)
    do {
        _ = try ImageDecoder.decode(image)
    } catch {
        violated("the compiled image of \(path) does not verify: \(error)")
    }
}

/// No diagnostic may point past the end of the file. Lines are bounded by every byte libyaml
/// may count as a break (LF, CR, and the last bytes of NEL, LS and PS). libyaml puts the end of a
/// stream whose last line has no line break at the start of the line after it, so one more line
/// is allowed there.
func checkPositions(_ diagnostics: [Diagnostic], _ bytes: [UInt8], _ path: String) {
    let isBreak = { (b: UInt8) in b == 0x0A || b == 0x0D || b == 0x85 || b == 0xA8 || b == 0xA9 }
    let lines = bytes.reduce(1) { $0 + (isBreak($1) ? 1 : 0) } + (bytes.last.map(isBreak) == false ? 1 : 0)
    for d in diagnostics where d.line != 0 {
        check(d.file == path, "diagnostic names file \(d.file ?? "-"), not \(path): \(d)")
        check(d.line >= 1 && d.line <= lines && d.column >= 1, "diagnostic outside the file (\(lines) lines at most): \(d)")
    }
}
