/// Strings that come from an image (names, labels, diagnostics, zones: a forged image carries
/// any string its author likes) or from the host (bpffs entry names) made safe to print.
///
/// A printed line of `inspect`, `diff`, `resolve`, `status` is one record: nothing in a string
/// may end the line, move the cursor, recolour or retitle the terminal, or reorder the text
/// around it. Those characters are shown as escapes, and `\` itself is doubled, so an escape
/// in the output always stands for the character it names and cannot be forged by a string that
/// spells one. A string without such characters is printed as it is (every valid name is).
public enum PrintableText {
    /// Characters that are escaped: C0 controls, DEL, C1 controls, the line and paragraph
    /// separators, and the bidirectional formatting characters (they reorder what follows).
    public static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029: true
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `s` for text output: `\n`, `\r`, `\t`, other characters below U+0080 as `\xHH` (`\x1b`,
    /// `\x00`, `\x7f`), the others as `\u{HHHH}` (`\u{9b}`, `\u{202e}`), and `\` as `\\`.
    /// Swift strings are valid Unicode: bytes that were not valid UTF-8 where a string was read
    /// are already U+FFFD, which is printed as it is.
    public static func escape(_ s: String) -> String {
        guard needsEscape(s, backslash: true) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isUnsafe(u) && u.value < 0x80: out += "\\x" + Hex.padded(u.value, width: 2)
            case _ where isUnsafe(u): out += "\\u{" + Hex.padded(u.value, width: 1) + "}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A JSON document (as JSONEncoder writes it) with the unsafe characters it leaves as they
    /// are (DEL, C1 controls, separators, bidirectional controls) written as `\uHHHH`. They can
    /// only occur inside strings, where that escape means the same character: the document
    /// stays valid and equal, and prints as plain text.
    public static func escapeJSON(_ json: String) -> String {
        guard needsEscape(json, backslash: false) else { return json }
        var out = ""
        out.reserveCapacity(json.utf8.count + 16)
        for u in json.unicodeScalars {
            // Controls below U+0020 are already escaped by any JSON writer (RFC 8259 requires
            // it); the newlines of pretty-printing are structure.
            if isUnsafe(u) && u.value >= 0x20 {
                out += "\\u" + Hex.padded(u.value, width: 4)
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A quick byte scan: plain printable ASCII (all valid output) needs no work.
    private static func needsEscape(_ s: String, backslash: Bool) -> Bool {
        for b in s.utf8 {
            if b >= 0x7F { return s.unicodeScalars.contains { isUnsafe($0) || (backslash && $0 == "\\") } }
            if b < 0x20 && (backslash || (b != 0x0A && b != 0x09 && b != 0x0D)) { return true }
            if backslash && b == 0x5C { return true }
        }
        return false
    }
}
