extension Dictionary {
    /// `values` indexed by `key`; where two share a key, the first is kept. The lookups readers
    /// build over an image's tables and metadata: ids are unique in any image the compiler
    /// writes, and a forged image with a repeated id must not crash a reader.
    public init<S: Sequence>(_ values: S, firstBy key: (S.Element) -> Key) where S.Element == Value {
        self.init(values.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `pairs` as a dictionary; where two share a key, the first is kept.
    public init<S: Sequence>(firstWins pairs: S) where S.Element == (Key, Value) {
        self.init(pairs, uniquingKeysWith: { first, _ in first })
    }
}
