import CJansson
import MapImage

/// `-o yaml`: the JSON a command prints, as block-style YAML (keys sorted, as the JSON's).
/// Strings are plain only where no YAML reader can take them for anything else (a letter or "/"
/// first, no ": " or " #", no YAML 1.1 boolean or null); otherwise double-quoted with JSON's
/// escapes, which YAML's double-quoted style reads the same.
public enum YAMLOutput {
    /// nil when `json` is not one JSON value.
    public static func fromJSON(_ json: String) -> String? {
        var error = json_error_t()
        let bytes = Array(json.utf8)
        let parsed = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<json_t>? in
            guard let base = buffer.baseAddress else { return nil }
            return json_loadb(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), buffer.count, Int(JSON_DECODE_ANY), &error)
        }
        guard let root = parsed else { return nil }
        defer { cjansson_decref(root) }
        var out = ""
        emit(root, indent: 0, into: &out, inline: false)
        if !out.hasSuffix("\n") { out += "\n" }
        return out
    }

    static let objectType = 0, arrayType = 1, stringType = 2, integerType = 3, realType = 4, trueType = 5, falseType = 6

    /// A scalar's text, or nil for a non-empty object or array.
    static func scalar(_ v: UnsafeMutablePointer<json_t>) -> String? {
        switch Int(cjansson_type(v)) {
        case objectType: return json_object_size(v) == 0 ? "{}" : nil
        case arrayType: return json_array_size(v) == 0 ? "[]" : nil
        case stringType: return quoted(String(cString: json_string_value(v)))
        case integerType: return "\(json_integer_value(v))"
        case realType: return "\(json_real_value(v))"
        case trueType: return "true"
        case falseType: return "false"
        default: return "null"
        }
    }

    static func emit(_ v: UnsafeMutablePointer<json_t>, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: " ", count: indent)
        if let s = scalar(v) {
            out += s + "\n"
            return
        }
        var first = true
        func prefix() -> String {
            defer { first = false }
            return first && inline ? "" : pad
        }
        if Int(cjansson_type(v)) == objectType {
            var keys: [String] = []
            var it = json_object_iter(v)
            while let i = it {
                keys.append(String(cString: json_object_iter_key(i)))
                it = json_object_iter_next(v, i)
            }
            for key in keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                guard let child = json_object_get(v, key) else { continue }
                out += prefix() + quoted(key) + ":"
                if let s = scalar(child) {
                    out += " " + s + "\n"
                } else if Int(cjansson_type(child)) == arrayType {
                    out += "\n"
                    emit(child, indent: indent, into: &out, inline: false)
                } else {
                    out += "\n"
                    emit(child, indent: indent + 2, into: &out, inline: false)
                }
            }
        } else {
            for k in 0..<json_array_size(v) {
                guard let child = json_array_get(v, k) else { continue }
                out += prefix() + "- "
                emit(child, indent: indent + 2, into: &out, inline: true)
            }
        }
    }

    /// Plain where unambiguous, else JSON's double-quoted form.
    static func quoted(_ s: String) -> String {
        let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]
        let safe = s.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "-_./:=@+, ".unicodeScalars.contains(c)
        }
        if let first = s.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first) || first == "/",
           safe, !s.contains(": "), !s.hasSuffix(":"), !s.hasSuffix(" "), !reserved.contains(s.lowercased()) {
            return s
        }
        var q = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": q += "\\\""
            case "\\": q += "\\\\"
            case "\n": q += "\\n"
            case "\t": q += "\\t"
            case "\r": q += "\\r"
            default:
                if c.value < 0x20 || c.value == 0x7F {
                    q += "\\u" + Hex.padded(c.value, width: 4)
                } else {
                    q.unicodeScalars.append(c)
                }
            }
        }
        return q + "\""
    }
}
