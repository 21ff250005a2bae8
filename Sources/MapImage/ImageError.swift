/// Why an image was refused. Every check of the decoder has its own message; `offset` is the byte
/// the problem was found at, when there is one.
public struct ImageError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public var offset: Int?

    public init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let offset { return "invalid image: \(message) (at byte \(offset))" }
        return "invalid image: \(message)"
    }
}
