import FoundationEssentials
import HostSystem
import Logging

/// What reflectors feed: every kind's store under one lock (the compile loop reads them all
/// together), and whoever follows changes and counts errors.
public protocol ReflectorSink: Sendable {
    /// Runs `body` on the stores, locked.
    func withStores<T: Sendable>(_ body: (inout [String: KindStore]) -> T) -> T
    /// Objects of `kind` changed, appeared or vanished; `listed`: by a list (the kind's first
    /// list makes a sync due even when it changed nothing).
    func changed(_ kind: String, keys: Set<KindStore.Key>, listed: Bool)
    /// A request failed or a response was refused (`KubeError.label`).
    func apiError(kind: String, reason: String)
    /// A watch event changed nothing kept (a kubelet's status update of a trimmed kind, an object
    /// sent again): dropped after `seconds` from its line being received.
    func dropped(kind: String, name: String, seconds: Double)
    /// The API server answered for `kind`: a list, a watch's first event (a bookmark at the
    /// latest every minute or so on a quiet cluster) or its normal end. What tells a cluster
    /// that is reachable again from one that is still failing (`watch --cluster-ttl`).
    func reached(kind: String)
}

extension ReflectorSink {
    public func reached(kind: String) {}
}

/// One reflector per kind, as client-go's: list (paged), then watch from the list's
/// version with bookmarks; a watch that ends is resumed from the last version seen.
///
/// Every response is checked against the kind it was asked of (KubeClient, RawListPage,
/// RawWatchEvent): a list or object of another kind, a Status where a list belongs, an object
/// without its identity, an oversize object or page, an HTTP error, a watch ERROR, a stream
/// that breaks, a watch that ends at once with nothing in it — each is an error for that kind.
/// An error never touches the kind's store (its last good state stays and keeps being
/// compiled with the other kinds'), is logged naming the kind, the server path and what was
/// wrong, counted in `balancer_api_errors_total{kind,reason}`, and backs off (`BackoffSchedule`,
/// jittered, 0.8 s doubling to 30 s). What comes after: a broken connection resumes the watch
/// from the last version; anything the reflector cannot trust relists.
///
/// 410 Gone (the version left the server's window) relists at once the first time, as
/// client-go does; a 410 again before any event arrived means relisting does not help, and it
/// backs off like any error (a server answering every watch with 410 costs a handful of
/// requests, not hundreds a second). A 404 for a CustomResourceDefinition's kind means it is not
/// installed: no objects of it, asked again after the back-off; a 404 for a built-in kind is an
/// error.
public struct Reflector: Sendable {
    public let client: KubeClient
    public let resource: KubeResource
    /// The back-off after an error of the API server.
    public let backoff: BackoffSchedule
    /// Each watch request asks the server to end it after this long (it is then resumed).
    public let watchTimeout: Int
    public let logger: Logger

    public init(client: KubeClient, resource: KubeResource, backoff: BackoffSchedule, watchTimeout: Int, logger: Logger) {
        self.client = client
        self.resource = resource
        self.backoff = backoff
        self.watchTimeout = watchTimeout
        self.logger = logger
    }

    /// Lists and watches until `shouldStop` says so, into `sink`'s store of the kind.
    public func run(into sink: some ReflectorSink, shouldStop: @escaping @Sendable () -> Bool) async {
        let r = resource
        var backoff = Backoff(self.backoff)
        var relist = true
        // A 410 arrived, and no event since.
        var goneWithoutProgress = false
        while !shouldStop() {
            do {
                if relist {
                    let (items, rv) = try await client.list(r)
                    // Pods and Nodes come trimmed to what the compiler reads (RawListPage).
                    let kept = items.map { item -> (key: KindStore.Key, object: [UInt8]) in
                        (KindStore.Key(namespace: item.namespace, name: item.name), item.object)
                    }
                    let keys = sink.withStores { $0[r.kind]?.replace(items: kept, resourceVersion: rv) } ?? []
                    sink.changed(r.kind, keys: keys, listed: true)
                    sink.reached(kind: r.kind)
                    relist = false
                    logger.debug("listed", metadata: ["kind": "\(r.kind)", "objects": "\(items.count)", "resourceVersion": "\(rv)"])
                }
                let from = sink.withStores { $0[r.kind]?.resourceVersion } ?? "0"
                let started = ContinuousClock.now
                var events = 0
                var ended: WatchStream.Event?
                try await client.watch(r, from: from, timeoutSeconds: watchTimeout) { received in
                    if received.type == .error {
                        ended = received
                        return false
                    }
                    events += 1
                    if events == 1 { sink.reached(kind: r.kind) }
                    goneWithoutProgress = false
                    // Pods and Nodes come trimmed (RawWatchEvent): an update of nothing kept is
                    // the object the store holds, and is dropped.
                    let event = received
                    let (next, moved) = sink.withStores { s -> (KindStore.Next, Bool) in
                        let before = s[r.kind]?.generation ?? 0
                        let n = s[r.kind]?.apply(event) ?? .relist
                        return (n, (s[r.kind]?.generation ?? 0) != before)
                    }
                    if let name = event.name {
                        if moved {
                            sink.changed(r.kind, keys: [KindStore.Key(namespace: event.namespace, name: name)], listed: false)
                        } else if event.type == .added || event.type == .modified {
                            let qualified = event.namespace.isEmpty ? name : "\(event.namespace)/\(name)"
                            sink.dropped(kind: r.kind, name: qualified, seconds: (ContinuousClock.now - event.received).inSeconds)
                        }
                    }
                    if next == .relist {
                        relist = true
                        return false
                    }
                    return !shouldStop()
                }
                let what = "watch \(r.kind) (\(client.config.server)\(r.path))"
                if ended == nil && (events > 0 || ContinuousClock.now - started >= .seconds(1)) { sink.reached(kind: r.kind) }
                if let error = ended {
                    relist = true
                    let status = error.status.map { "\($0)" } ?? "no Status"
                    guard error.code == 410 else { throw KubeError("\(what): an ERROR event (\(status))", status: error.code, reason: .watchError) }
                    guard !goneWithoutProgress else {
                        throw KubeError("\(what): 410 Gone again with no event since the last (\(status))", status: 410, reason: .gone)
                    }
                    goneWithoutProgress = true
                    logger.info("relisting", metadata: ["kind": "\(r.kind)", "code": "410"])
                } else if events == 0 && !relist && !shouldStop() && ContinuousClock.now - started < .seconds(1) {
                    throw KubeError("\(what): the watch ended within a second with no event", reason: .shortWatch)
                }
            } catch {
                if shouldStop() { return }
                var e = error as? KubeError ?? KubeError("\(r.kind): \(error)")
                if e.reason == .http && e.status == 410 {
                    // A list's continue token or a watch's version too old, answered as HTTP 410.
                    relist = true
                    if !goneWithoutProgress {
                        goneWithoutProgress = true
                        logger.info("relisting", metadata: ["kind": "\(r.kind)", "code": "410"])
                        continue
                    }
                    e.reason = .gone
                }
                let forbidden = r.forbiddenMeansAbsent && e.reason == .http && e.status == 403
                if r.custom && e.reason == .http && (e.status == 404 || forbidden) {
                    relist = true
                    let (keys, had) = sink.withStores { s -> (Set<KindStore.Key>, Int) in
                        let had = s[r.kind]?.objects.count ?? 0
                        return (s[r.kind]?.replace(items: [], resourceVersion: "0") ?? [], had)
                    }
                    sink.changed(r.kind, keys: keys, listed: true)
                    sink.reached(kind: r.kind)
                    let delay = backoff.failure()
                    let level: Logger.Level = backoff.failures == 1 || had > 0 ? (forbidden ? .warning : .info) : .debug
                    let why = forbidden ? "forbidden: grant get, list and watch on \(r.path.split(separator: "/").last ?? "") of \(r.apiVersion) "
                        + "to balancer's ClusterRole (deploy/agent/rbac.yaml)" : r.whyAbsent
                    logger.log(level: level, "\(r.kind): not served at \(r.path) (\(why)): no objects of it; asking again in \(delay.secondsText)",
                               metadata: ["kind": "\(r.kind)"])
                    await Self.pause(delay, shouldStop: shouldStop)
                    continue
                }
                switch e.reason {
                case .transport, .brokenStream, .shortWatch: break  // resumed from the last version
                default: relist = true
                }
                sink.apiError(kind: r.kind, reason: e.label)
                let delay = backoff.failure()
                let kept = sink.withStores { s -> String in
                    guard let store = s[r.kind], let rv = store.resourceVersion else {
                        return "no \(r.kind) listed yet (nothing is compiled before every kind is)"
                    }
                    return "the last good state of \(r.kind) stays (\(store.objects.count) objects at resourceVersion \(rv))"
                }
                logger.warning("\(e.description); \(kept); retrying in \(delay.secondsText)", metadata: ["kind": "\(r.kind)", "reason": "\(e.label)"])
                await Self.pause(delay, shouldStop: shouldStop)
            }
        }
    }

    /// Sleeps `delay`, or less when asked to stop.
    public static func pause(_ delay: Duration, shouldStop: @Sendable () -> Bool) async {
        let end = ContinuousClock.now + delay
        while ContinuousClock.now < end && !shouldStop() {
            try? await Task.sleep(for: min(.milliseconds(50), end - ContinuousClock.now))
        }
    }
}
