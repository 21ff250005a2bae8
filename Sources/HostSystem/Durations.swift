/// `Duration` as the number timings, metrics and back-off arithmetic use: one conversion (a
/// Duration is seconds plus attoseconds).
extension Duration {
    /// Seconds as a fraction.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
