@testable import KubeAPI
import Testing

/// A server that cannot be reached is named in words, not as the networking library's types.
@Suite struct TransportErrorTests {
    @Test func aRefusedConnectionReadsAsOne() async throws {
        let client = try KubeClient(config: KubeClientConfig(server: "http://127.0.0.1:1", insecureSkipTLSVerify: false, token: "t", origin: "test"))
        var message = ""
        do {
            _ = try await client.list(.services)
        } catch {
            message = error.description
        }
        await client.shutdown()
        #expect(message == "list Service (http://127.0.0.1:1/api/v1/services): connection refused", "\(message)")
    }
}
