#if canImport(Glibc)
import Glibc
#endif

// Shared by every Swift fuzz target (compiled into each one).

/// libFuzzer's input as an array (the API under test takes arrays).
func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A broken invariant: libFuzzer sees the abort as a crash and keeps the input.
func violated(_ message: @autoclosure () -> String) -> Never {
    let text = Array("fuzz invariant violated: \(message())\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { violated(message()) }
}

/// 1-based line and byte column of `offset` in `bytes`.
/// A UTF-8 byte order mark at the start of a JSON file is not a column: the splitter hands jansson
/// the bytes after it, and editors show the first character after it in column 1.
func position(of offset: Int, in bytes: [UInt8], bomIsColumn: Bool = true) -> (line: Int, column: Int) {
    var line = 1, lineStart = !bomIsColumn && offset >= 3 && bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    for i in 0..<offset where bytes[i] == 0x0A {
        line += 1
        lineStart = i + 1
    }
    return (line, offset - lineStart + 1)
}

/// A short printable rendering of bytes for messages.
func show(_ bytes: some Collection<UInt8>) -> String {
    let s = String(decoding: bytes.prefix(120), as: UTF8.self)
    return s.debugDescription + (bytes.count > 120 ? "…(\(bytes.count) bytes)" : "")
}
