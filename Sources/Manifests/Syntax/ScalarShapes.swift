extension ManifestTree {
    // MARK: Plain-scalar shapes (shared with the builder)

    static func isNullText(_ text: [UInt8], _ start: Int, _ length: Int) -> Bool {
        switch length {
        case 0: return true
        case 1: return text[start] == UInt8(ascii: "~")
        case 4:
            let s = text[start ..< start + 4]
            return s.elementsEqual("null".utf8) || s.elementsEqual("Null".utf8) || s.elementsEqual("NULL".utf8)
        default: return false
        }
    }

    static func boolValue(_ text: [UInt8], _ start: Int, _ length: Int) -> Bool? {
        let s = text[start ..< start + length]
        switch length {
        case 4:
            if s.elementsEqual("true".utf8) || s.elementsEqual("True".utf8) || s.elementsEqual("TRUE".utf8) { return true }
        case 5:
            if s.elementsEqual("false".utf8) || s.elementsEqual("False".utf8) || s.elementsEqual("FALSE".utf8) { return false }
        default: break
        }
        return nil
    }

    enum NumberShape { case none, integer, real }

    /// Classifies text by JSON's number grammar, the one notation YAML and JSON share.
    static func numberShape(_ text: [UInt8], _ start: Int, _ length: Int) -> NumberShape {
        let end = start + length
        var i = start
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if i < end, text[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end, isDigit(text[i]) else { return .none }
        if text[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < end, isDigit(text[i]) { i += 1 }
        }
        var shape = NumberShape.integer
        if i < end, text[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, isDigit(text[i]) else { return .none }
            while i < end, isDigit(text[i]) { i += 1 }
            shape = .real
        }
        if i < end, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, isDigit(text[i]) else { return .none }
            while i < end, isDigit(text[i]) { i += 1 }
            shape = .real
        }
        return i == end ? shape : .none
    }
}
