import FoundationEssentials
import HostSystem

/// A jittered exponential back-off: the delay starts at `initial`, doubles (× `factor`) after
/// each failure up to `maximum`, and each wait is the delay × a random factor in `jitter` so that
/// many watchers failing together do not retry together. A failure more than `resetAfter` after
/// the previous one starts again from `initial` (client-go's reflector: 0.8 s to 30 s, reset
/// after 2 minutes without a failure).
public struct BackoffSchedule: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var factor: Double
    public var jitter: ClosedRange<Double>
    public var resetAfter: Duration

    public init(initial: Duration, maximum: Duration, factor: Double = 2, jitter: ClosedRange<Double> = 0.5...1.5, resetAfter: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.resetAfter = resetAfter
    }

    /// Errors of the API server (a list, a watch, a refused response, 410 after 410): client-go's.
    public static let apiServer = BackoffSchedule(initial: .milliseconds(800), maximum: .seconds(30), resetAfter: .seconds(120))
    /// Deliveries to the sink: a retry is local and cheap (opening the pinned maps), so the cap is
    /// short and the datapath holds the image within a few seconds of `attach`.
    public static let delivery = BackoffSchedule(initial: .milliseconds(250), maximum: .seconds(5), resetAfter: .seconds(60))
}

/// The state of one back-off (a reflector's, or the watcher's deliveries').
public struct Backoff: Sendable {
    public let schedule: BackoffSchedule
    private var delay: Double
    private var lastFailure: ContinuousClock.Instant?
    /// Failures since the last reset.
    public private(set) var failures = 0

    public init(_ schedule: BackoffSchedule) {
        self.schedule = schedule
        delay = schedule.initial.inSeconds
    }

    /// The wait after a failure now; the next one will be longer.
    public mutating func failure(now: ContinuousClock.Instant = .now) -> Duration {
        if let last = lastFailure, now - last > schedule.resetAfter { reset() }
        let wait = delay * Double.random(in: schedule.jitter)
        delay = min(delay * schedule.factor, schedule.maximum.inSeconds)
        lastFailure = now
        failures += 1
        return .nanoseconds(Int64(wait * 1e9))
    }

    public mutating func reset() {
        delay = schedule.initial.inSeconds
        lastFailure = nil
        failures = 0
    }
}

extension Duration {
    /// "1.2 s" for logs: two decimals under a second, one under ten, none above.
    public var secondsText: String {
        let s = inSeconds
        return s < 1 ? String(format: "%.2f s", s) : s < 10 ? String(format: "%.1f s", s) : String(format: "%.0f s", s)
    }
}
