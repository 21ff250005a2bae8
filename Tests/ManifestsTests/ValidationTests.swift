@testable import Manifests
import MapImage
import TestSupport
import Testing

/// Kubernetes' validation rules as the decoder applies them (pkg/util/validation,
/// ValidateNonSpecialIP), with the edge cases of each.
@Suite struct ValidationTests {
    @Test(arguments: [
        ("web", true), ("a", true), ("a-b-1", true), ("1web", false), ("-web", false), ("web-", false), ("Web", false),
        ("web.x", false), (String(repeating: "a", count: 63), true), (String(repeating: "a", count: 64), false), ("", false),
        ("web\n", false), ("w\u{0}b", false), ("wéb", false),
    ])
    func dns1035(_ name: String, _ valid: Bool) {
        #expect((KubeValidation.dns1035Label(name) == nil) == valid, "\(name.debugDescription)")
    }

    @Test(arguments: [
        ("web", true), ("1web", true), ("kube-system", true), ("kube_system", false), ("a.b", false),
        (String(repeating: "a", count: 64), false),
    ])
    func dns1123Label(_ name: String, _ valid: Bool) {
        #expect((KubeValidation.dns1123Label(name) == nil) == valid, "\(name.debugDescription)")
    }

    @Test(arguments: [
        ("kind-worker", true), ("ip-10-0-0-1.ec2.internal", true), ("a..b", false), (".a", false), ("a.", false),
        ("a/b", false), ("node 1", false), (String(repeating: "a.", count: 126) + "a", true),
        (String(repeating: "a.", count: 127) + "a", false),
    ])
    func dns1123Subdomain(_ name: String, _ valid: Bool) {
        #expect((KubeValidation.dns1123Subdomain(name) == nil) == valid, "\(name.debugDescription)")
    }

    @Test(arguments: [
        ("app", true), ("kubernetes.io/service-name", true), ("app.kubernetes.io/name", true), ("My_Key.1", true),
        ("/app", false), ("a/b/c", false), ("example.com/", false), ("_app", false), ("Example.com/app", false),
        (String(repeating: "a", count: 64), false),
    ])
    func qualifiedName(_ key: String, _ valid: Bool) {
        #expect((KubeValidation.qualifiedName(key) == nil) == valid, "\(key.debugDescription)")
    }

    @Test(arguments: [("", true), ("v1.2_3-x", true), ("two words", false), ("-x", false), (String(repeating: "a", count: 64), false)])
    func labelValue(_ value: String, _ valid: Bool) {
        #expect((KubeValidation.labelValue(value) == nil) == valid, "\(value.debugDescription)")
    }

    /// The ranges of Go's net.IP predicates, IPv4-mapped IPv6 read as IPv4 (as ParseIP does).
    @Test(arguments: [
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"),
        ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("febf::1", "link-local"), ("fec0::1", ""), ("224.0.0.251", "link-local multicast"), ("ff02::fb", "link-local multicast"), ("ff12::1", "link-local multicast"),
        ("224.0.1.1", ""), ("ff05::2", ""), ("10.0.0.1", ""), ("2001:db8::1", ""),
    ])
    func nonSpecial(_ text: String, _ problem: String) throws {
        let ip = try #require(IPAddress(text))
        let why = KubeValidation.addressProblem(ip, .nonSpecial) ?? ""
        if problem.isEmpty {
            #expect(why.isEmpty, "\(text): \(why)")
        } else {
            #expect(why.contains(problem), "\(text): \(why)")
        }
    }

    @Test func capturedAndDestinationRules() throws {
        func problem(_ text: String, _ rule: KubeValidation.AddressRule) throws -> String? {
            KubeValidation.addressProblem(try #require(IPAddress(text)), rule)
        }
        // node-local DNS listens on a link-local address: a policy frontend may use it.
        #expect(try problem("169.254.20.10", .captured) == nil)
        #expect(try problem("127.0.0.53", .captured)?.contains("loopback") == true)
        #expect(try problem("239.1.1.1", .captured)?.contains("multicast") == true)
        #expect(try problem("0.0.0.0", .captured)?.contains("unspecified") == true)
        #expect(try problem("127.0.0.1", .destination) == nil)
        #expect(try problem("ff05::1", .destination)?.contains("multicast") == true)
        #expect(try problem("::", .destination)?.contains("unspecified") == true)
    }

    @Test func messagesEscapeAndShorten() {
        #expect(shown("a\nb\t\"c\"\\") == "\"a\\nb\\t\\\"c\\\"\\\\\"")
        #expect(shown("\u{1b}[31m\u{7f}\u{85}\u{2028}") == "\"\\u{1b}[31m\\u{7f}\\u{85}\\u{2028}\"")
        let long = shown(String(repeating: "x", count: 500))
        #expect(long.hasSuffix("…\" (500 bytes)") && long.count < 220)
        let d = Diagnostic(.error, file: "a\nb.yaml", line: 1, column: 2, object: "Service x\r", field: "f", message: "m\u{0}")
        #expect(d.description == "a\\nb.yaml:1:2: error: Service x\\r: f: m\\u{0}")
    }

    /// The API server's EndpointSlice limits: 1000 endpoints, 100 addresses and 100 ports.
    @Test func endpointSliceLimits() throws {
        func slice(endpoints: Int, addresses: Int = 1) -> String {
            let addrs = (0..<addresses).map { "\"10.1.\($0 / 250).\($0 % 250 + 1)\"" }.joined(separator: ",")
            let eps = (0..<endpoints).map { i in "{\"addresses\":[\"10.2.\(i / 250).\(i % 250 + 1)\"\(addresses > 1 ? "," + addrs : "")]}" }
            return "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},"
                + "\"addressType\":\"IPv4\",\"endpoints\":[\(eps.joined(separator: ","))],\"ports\":[{\"port\":80}]}"
        }
        #expect(compileErrors([("s.json", slice(endpoints: 1000))]).isEmpty)
        let many = compileErrors([("s.json", slice(endpoints: 1001))])
        #expect(many.map(\.message) == ["too many endpoints: 1001 (an EndpointSlice holds at most 1000)"])
        let addresses = compileErrors([("s.json", slice(endpoints: 1, addresses: 100))])
        #expect(addresses.map(\.message) == ["too many addresses: 101 (an endpoint holds at most 100)"])
    }
}
