@testable import KubeAPI
import Manifests
import Testing

/// What the API server sends, checked against the resource it was asked of (RawListPage,
/// RawWatchEvent): each class of wrong response is refused with the problem named.
@Suite struct WireCheckTests {
    static let services = KubeResource.services.wire
    static let nodes = KubeResource.nodes.wire
    static let policies = KubeResource.localRedirectPolicies.wire

    static func page(kind: String = "ServiceList", apiVersion: String = "v1", items: String, rv: String = #""resourceVersion":"12""#) -> [UInt8] {
        Array(#"{"kind":"\#(kind)","apiVersion":"\#(apiVersion)","metadata":{\#(rv)},"items":\#(items)}"#.utf8)
    }

    static let web = #"{"metadata":{"name":"web","namespace":"default","resourceVersion":"10"},"spec":{"clusterIP":"10.96.0.10"}}"#

    func refusal(_ body: [UInt8], _ resource: WireResource = WireCheckTests.services, maxObjectBytes: Int = .max) -> WireError? {
        do {
            _ = try RawListPage.parse(body, expecting: resource, maxObjectBytes: maxObjectBytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func aGoodPageGivesItsItemsWithTheirKind() throws {
        let page = try RawListPage.parse(Self.page(items: "[\(Self.web)]"), expecting: Self.services)
        #expect(page.items.map(\.name) == ["web"] && page.items.first?.namespace == "default" && page.resourceVersion == "12")
        let (snapshot, _) = try InputLoader.load(contents: [("web.json", try #require(page.items.first).object)])
        #expect(snapshot.services.count == 1, "the item is given kind and apiVersion")
        // Empty lists: [] and the null some API server releases sent.
        #expect(try RawListPage.parse(Self.page(items: "[]"), expecting: Self.services).items.isEmpty)
        #expect(try RawListPage.parse(Self.page(items: "null"), expecting: Self.services).items.isEmpty)
        // A CRD list's items carry kind and apiVersion: accepted when they match.
        let lrp = #"{"kind":"LocalRedirectPolicy","apiVersion":"balancing.elf.io/v1beta1","metadata":{"name":"dns","resourceVersion":"3"}}"#
        #expect(try RawListPage.parse(Self.page(kind: "LocalRedirectPolicyList", apiVersion: "balancing.elf.io/v1beta1", items: "[\(lrp)]"),
                                      expecting: Self.policies).items.count == 1)
    }

    @Test func wrongListsAreRefused() {
        let cases: [([UInt8], WireError.Problem, String)] = [
            // A list of another kind on the Services path.
            (Self.page(kind: "ConfigMapList", items: #"[{"metadata":{"name":"cm","namespace":"default","resourceVersion":"1"}}]"#),
             .wrongKind, #"the response is a "ConfigMapList", not a ServiceList"#),
            (Array(#"{"apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#.utf8), .wrongKind, "an object without a kind"),
            // A Status in a 200: an error, never an empty list.
            (Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}"#.utf8),
             .statusObject, "a Status (code 500, reason \"InternalError\", \"etcdserver: request timed out\")"),
            (Self.page(apiVersion: "v2", items: "[]"), .wrongAPIVersion, #"apiVersion "v2", not v1"#),
            (Self.page(items: "[]", rv: ""), .missingResourceVersion, "no metadata.resourceVersion"),
            (Array(#"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1"}}"#.utf8), .malformed, "has no items"),
            (Self.page(items: #"{"a":1}"#), .malformed, "items is an object, not an array"),
            (Self.page(items: #"["web"]"#), .malformed, "items[0] is a string, not an object"),
            (Array("{\"kind\":\"ServiceList\",".utf8), .malformed, "is not JSON"),
            (Array(#"{"kind":"ServiceList","kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#.utf8), .malformed, "duplicate"),
        ]
        for (body, problem, text) in cases {
            let e = refusal(body)
            #expect(e?.problem == problem, "\(String(decoding: body, as: UTF8.self)): \(String(describing: e))")
            #expect(e?.message.contains(text) == true, "\(e?.message ?? "accepted"): expected \(text)")
        }
    }

    @Test func wrongItemsAreRefused() {
        let cases: [(String, WireResource, WireError.Problem, String)] = [
            (#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","namespace":"default","resourceVersion":"1"}}"#, Self.services,
             .wrongKind, #"items[1] is a "ConfigMap", not a Service"#),
            (#"{"kind":"Service","apiVersion":"v2","metadata":{"name":"x","namespace":"default","resourceVersion":"1"}}"#, Self.services,
             .wrongAPIVersion, #"items[1] (Service "default/x") has apiVersion "v2", not v1"#),
            (#"{"metadata":{"name":"x","resourceVersion":"1"}}"#, Self.services, .badIdentity, "has no metadata.namespace, but Service is a namespaced kind"),
            (#"{"metadata":{"name":"n","namespace":"default","resourceVersion":"1"}}"#, Self.nodes, .badIdentity, "but Node is cluster-scoped"),
            (#"{"kind":"LocalRedirectPolicy","apiVersion":"balancing.elf.io/v1beta1","metadata":{"name":"p","namespace":"kube-system","resourceVersion":"1"}}"#,
             Self.policies, .badIdentity, "but LocalRedirectPolicy is cluster-scoped"),
            (#"{"metadata":{"name":7,"namespace":"default","resourceVersion":"1"}}"#, Self.services, .badIdentity, "metadata.name is a number, not a string"),
            (#"{"metadata":{"namespace":"default","resourceVersion":"1"}}"#, Self.services, .badIdentity, "has no metadata.name"),
            (#"{"metadata":{"name":"","namespace":"default","resourceVersion":"1"}}"#, Self.services, .badIdentity, "an empty metadata.name"),
            (#"{"spec":{}}"#, Self.services, .badIdentity, "has no metadata object"),
            (#"{"metadata":{"name":"x","namespace":"default"}}"#, Self.services, .missingResourceVersion, "has no metadata.resourceVersion"),
            (#"{"kind":7,"metadata":{"name":"x","namespace":"default","resourceVersion":"1"}}"#, Self.services, .malformed, "kind is a number"),
        ]
        for (item, resource, problem, text) in cases {
            let listKind = resource.kind + "List"
            let e = refusal(Self.page(kind: listKind, apiVersion: resource.apiVersion, items: "[\(resource == Self.services ? Self.web : #"{"kind":"\#(resource.kind)","metadata":{"name":"ok","resourceVersion":"2"}}"#),\(item)]"),
                            resource)
            #expect(e?.problem == problem, "\(item): \(String(describing: e))")
            #expect(e?.message.contains(text) == true, "\(e?.message ?? "accepted"): expected \(text)")
        }
    }

    @Test func oversizeItemsAreRefused() {
        let big = #"{"metadata":{"name":"big","namespace":"default","resourceVersion":"1","annotations":{"a":"\#(String(repeating: "x", count: 5000))"}}}"#
        let e = refusal(Self.page(items: "[\(Self.web),\(big)]"), maxObjectBytes: 4096)
        #expect(e?.problem == .tooLarge)
        #expect(e?.message.contains("items[1] (Service \"default/big\") is 5") == true && e?.message.contains("bytes, more than the object cap of 4096") == true,
                "\(e?.message ?? "accepted")")
        #expect(refusal(Self.page(items: "[\(Self.web),\(big)]"), maxObjectBytes: 8192) == nil)
    }

    func event(_ line: String, _ resource: WireResource = WireCheckTests.services, maxObjectBytes: Int = .max) -> Result<RawWatchEvent, WireError> {
        Result { () throws(WireError) in try RawWatchEvent.parse(Array(line.utf8), expecting: resource, maxObjectBytes: maxObjectBytes) }
    }

    @Test func watchEventsAreCheckedAgainstTheirKind() throws {
        // The good ones.
        let added = try event(#"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"5"}}}"#).get()
        #expect(added.name == "web" && added.namespace == "default" && added.resourceVersion == "5")
        let bookmark = try event(#"{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}"#).get()
        #expect(bookmark.resourceVersion == "9")
        let gone = try event(#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#).get()
        #expect(gone.code == 410 && gone.status?.reason == "Expired" && gone.status?.message == "too old resource version: 1 (5)")

        let cases: [(String, WireError.Problem, String)] = [
            // An object of another kind: an EndpointSlice on the Services watch.
            (#"{"type":"ADDED","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"web-1","namespace":"default","resourceVersion":"6"}}}"#,
             .wrongKind, #"the ADDED object is a "EndpointSlice", not a Service"#),
            (#"{"type":"MODIFIED","object":{"kind":"Service","apiVersion":"v2","metadata":{"name":"web","namespace":"default","resourceVersion":"6"}}}"#,
             .wrongAPIVersion, #"has apiVersion "v2", not v1"#),
            (#"{"type":"DELETED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","resourceVersion":"6"}}}"#,
             .badIdentity, "has no metadata.namespace"),
            (#"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"namespace":"default","resourceVersion":"6"}}}"#,
             .badIdentity, "has no metadata.name"),
            (#"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"default"}}}"#,
             .missingResourceVersion, "has no metadata.resourceVersion"),
            (#"{"type":"ADDED","object":{"kind":"Status","apiVersion":"v1","code":500,"message":"boom"}}"#, .statusObject, "is a Status (code 500"),
            (#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}"#, .wrongKind, "the BOOKMARK object is a \"Pod\""),
            (#"{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{}}}"#, .missingResourceVersion, "the BOOKMARK has no"),
            (#"{"kind":"Status","apiVersion":"v1","code":403,"message":"forbidden"}"#, .statusObject, "a bare Status (code 403"),
            (#"{"type":"EXPLODED","object":{}}"#, .malformed, "unknown watch event type"),
            (#"{"type":"ADDED","object":[]}"#, .malformed, "no \"object\""),
        ]
        for (line, problem, text) in cases {
            switch event(line) {
            case .success: Issue.record("accepted: \(line)")
            case .failure(let e):
                #expect(e.problem == problem, "\(line): \(e)")
                #expect(e.message.contains(text), "\(e.message): expected \(text)")
            }
        }
        // Objects of a watch without kind/apiVersion are given them (and then decode as manifests).
        let bare = try event(#"{"type":"ADDED","object":{"metadata":{"name":"n1","resourceVersion":"3"}}}"#, Self.nodes).get()
        #expect(String(decoding: bare.object, as: UTF8.self).contains(#""kind":"Node""#))
        // The object cap.
        let big = #"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"6","annotations":{"a":"\#(String(repeating: "y", count: 3000))"}}}}"#
        if case .failure(let e) = event(big, maxObjectBytes: 2048) {
            #expect(e.problem == .tooLarge && e.message.contains("the ADDED object (\"default/web\") is 3") && e.message.contains("the object cap of 2048"), "\(e)")
        } else {
            Issue.record("an object over the cap was accepted")
        }
    }

    @Test func theStreamCarriesTheProblem() {
        var s = WatchStream(maxLineBytes: 1 << 20, expecting: Self.services)
        do {
            _ = try s.feed(Array((#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"d","resourceVersion":"1"}}}"# + "\n").utf8))
            Issue.record("a ConfigMap on the Services watch was accepted")
        } catch {
            #expect(error.problem == .wrongKind)
        }
        var t = WatchStream(maxLineBytes: 100, expecting: Self.services)
        #expect(throws: WatchStream.Failure.self) { try t.feed(Array(repeating: UInt8(ascii: "x"), count: 101)) }
        var u = WatchStream(maxLineBytes: 100, expecting: Self.services)
        do { _ = try u.feed(Array(repeating: UInt8(ascii: "x"), count: 101)) } catch { #expect(error.problem == .tooLarge) }
    }
}
