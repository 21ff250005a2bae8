import CManifestScan

/// The splitter's calls into its C byte loops (CManifestScan): the only pointers the splitter
/// uses, kept here with the other C bridges of the syntax layer.
enum ScanBridge {
    /// The offset just past the JSON value at `pos`, or nil; updates the line bookkeeping.
    static func skipJSONValue(_ bytes: [UInt8], from pos: Int, line: inout Int, lineStart: inout Int) -> Int? {
        guard pos < bytes.count else { return nil }
        var l = line, ls = lineStart
        let end = bytes.withUnsafeBufferPointer { buf -> Int in
            guard let base = buf.baseAddress else { return -1 }
            return bl_json_skip_value(base, buf.count, pos, &l, &ls)
        }
        guard end >= 0 else { return nil }
        line = l
        lineStart = ls
        return end
    }

    /// The next document-marker line at or after `pos` (a line start), or `bytes.count`.
    static func nextYAMLMarker(_ bytes: [UInt8], from pos: Int, line: inout Int) -> Int {
        guard pos < bytes.count else { return bytes.count }
        var l = line
        let at = bytes.withUnsafeBufferPointer { buf -> Int in
            guard let base = buf.baseAddress else { return buf.count }
            return bl_yaml_next_marker(base, buf.count, pos, &l)
        }
        line = l
        return at
    }

    static func hasYAMLDirective(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return false }
            return bl_yaml_has_directive(base, buf.count) != 0
        }
    }
}
