import Foundation
@testable import KubeAPI
import Testing

/// Kubeconfig exec credential plugins against the API server double (a double: there is no API
/// server here; it takes the token "good" and answers 401 to any other). The plugin is a shell
/// script that counts its runs, records KUBERNETES_EXEC_INFO, and answers from files the test
/// writes, so every property is seen from outside: one run for many requests, a run again on a
/// 401 and at expiry, the cluster info it was given, its failures in words.
@Suite(.serialized) struct ExecCredentialTests {
    struct Plugin {
        var dir: String
        var kubeconfig: String { dir + "/config" }
        var runs: Int { ((try? String(contentsOfFile: dir + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count }
        var info: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/info")))) as? [String: Any] ?? [:]
        }
    }

    /// A plugin answering `tokens[n]` on its n-th run (the last one from then on), with an expiry
    /// `expiresIn` seconds ahead; the kubeconfig's exec section gets `extra` lines.
    func plugin(port: Int, tokens: [String], expiresIn: Int = 3600, apiVersion: String = "client.authentication.k8s.io/v1",
                answerVersion: String? = nil, extra: String = "      interactiveMode: Never") throws -> Plugin {
        let dir = NSTemporaryDirectory() + "balancer-exec-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try tokens.joined(separator: "\n").write(toFile: dir + "/tokens", atomically: true, encoding: .utf8)
        let expiry = ISO8601DateFormatter().string(from: Date().addingTimeInterval(TimeInterval(expiresIn)))
        try """
        #!/bin/sh
        echo run >> "$PLUGIN_DIR/runs"
        printf '%s' "$KUBERNETES_EXEC_INFO" > "$PLUGIN_DIR/info"
        n=$(wc -l < "$PLUGIN_DIR/runs")
        token=$(sed -n "${n}p" "$PLUGIN_DIR/tokens")
        [ -n "$token" ] || token=$(tail -n 1 "$PLUGIN_DIR/tokens")
        printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "$ANSWER_VERSION" "$token" "\(expiry)"
        """.write(toFile: dir + "/plugin.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/plugin.sh", 0o755)
        try """
        apiVersion: v1
        kind: Config
        current-context: test
        clusters:
        - name: test
          cluster: {server: "http://127.0.0.1:\(port)"}
        users:
        - name: test
          user:
            exec:
              apiVersion: \(apiVersion)
              command: ./plugin.sh
              args: [get-token, --cluster, test]
              env:
              - {name: PLUGIN_DIR, value: "\(dir)"}
              - {name: ANSWER_VERSION, value: "\(answerVersion ?? apiVersion)"}
              installHint: install the test plugin
        \(extra)
        contexts:
        - name: test
          context: {cluster: test, user: test}
        """.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        return Plugin(dir: dir)
    }

    func list(_ client: KubeClient) async -> String {
        do {
            return "ok \(try await client.list(.services).items.count)"
        } catch {
            return "error \(error)"
        }
    }

    func server() -> APIServerDouble? {
        let api = try? APIServerDouble()
        api?.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                 #"{"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.96.0.5","ports":[{"port":80}]}}"#)
        return api
    }

    /// The plugin's token is sent; it runs once for many requests while its credential is good,
    /// and is given the protocol's version and `interactive: false` (the agent has no terminal).
    @Test func aTokenFromThePluginIsCachedUntilItExpires() async throws {
        let api = try #require(server())
        defer { api.stop() }
        let p = try plugin(port: api.port, tokens: ["good"])
        defer { try? FileManager.default.removeItem(atPath: p.dir) }
        let client = try KubeClient(config: try Kubeconfig.load(paths: [p.kubeconfig]))
        #expect(await list(client) == "ok 1")
        #expect(await list(client) == "ok 1")
        #expect(await list(client) == "ok 1")
        #expect(p.runs == 1)
        #expect(p.info["apiVersion"] as? String == "client.authentication.k8s.io/v1")
        #expect(p.info["kind"] as? String == "ExecCredential")
        let spec = try #require(p.info["spec"] as? [String: Any])
        #expect(spec["interactive"] as? Bool == false)
        #expect(spec["cluster"] == nil, "cluster info only with provideClusterInfo")
        #expect(api.state.withLock { $0.lastHeaders["authorization"] } == ["Bearer good"])
        await client.shutdown()

        // A credential within seconds of its expiry is not used: each request runs the plugin.
        let short = try plugin(port: api.port, tokens: ["good"], expiresIn: 5)
        defer { try? FileManager.default.removeItem(atPath: short.dir) }
        let again = try KubeClient(config: try Kubeconfig.load(paths: [short.kubeconfig]))
        #expect(await list(again) == "ok 1")
        #expect(await list(again) == "ok 1")
        #expect(short.runs == 2)
        await again.shutdown()
    }

    /// A token the server refuses (401) is dropped and the plugin runs again, once per request,
    /// as kubectl does: the request then succeeds with the new token.
    @Test func aRefusedTokenRunsThePluginAgain() async throws {
        let api = try #require(server())
        defer { api.stop() }
        let p = try plugin(port: api.port, tokens: ["revoked", "good"])
        defer { try? FileManager.default.removeItem(atPath: p.dir) }
        let client = try KubeClient(config: try Kubeconfig.load(paths: [p.kubeconfig]))
        #expect(await list(client) == "ok 1")
        #expect(p.runs == 2)
        #expect(await list(client) == "ok 1")
        #expect(p.runs == 2)
        await client.shutdown()

        // A plugin that keeps answering a refused token: one retry, then the 401 is the error.
        let bad = try plugin(port: api.port, tokens: ["revoked"])
        defer { try? FileManager.default.removeItem(atPath: bad.dir) }
        let refused = try KubeClient(config: try Kubeconfig.load(paths: [bad.kubeconfig]))
        let r = await list(refused)
        #expect(r.contains("401 Unauthorized"), "\(r)")
        #expect(bad.runs == 2)
        await refused.shutdown()
    }

    /// provideClusterInfo hands the plugin the cluster (as EKS's and GKE's plugins read it);
    /// v1beta1 is spoken as well; an answer in another version, a missing plugin and a failing
    /// one are errors that say so.
    @Test func clusterInfoVersionsAndFailures() async throws {
        let api = try #require(server())
        defer { api.stop() }
        let info = try plugin(port: api.port, tokens: ["good"], apiVersion: "client.authentication.k8s.io/v1beta1",
                              extra: "      interactiveMode: IfAvailable\n      provideClusterInfo: true")
        defer { try? FileManager.default.removeItem(atPath: info.dir) }
        let client = try KubeClient(config: try Kubeconfig.load(paths: [info.kubeconfig]))
        #expect(await list(client) == "ok 1")
        let cluster = try #require((info.info["spec"] as? [String: Any])?["cluster"] as? [String: Any])
        #expect(cluster["server"] as? String == "http://127.0.0.1:\(api.port)")
        await client.shutdown()

        let mismatch = try plugin(port: api.port, tokens: ["good"], answerVersion: "client.authentication.k8s.io/v1beta1")
        defer { try? FileManager.default.removeItem(atPath: mismatch.dir) }
        let c2 = try KubeClient(config: try Kubeconfig.load(paths: [mismatch.kubeconfig]))
        let r2 = await list(c2)
        #expect(r2.contains("answered in client.authentication.k8s.io/v1beta1, and the kubeconfig asked for client.authentication.k8s.io/v1"), "\(r2)")
        await c2.shutdown()

        let missing = try plugin(port: api.port, tokens: ["good"])
        defer { try? FileManager.default.removeItem(atPath: missing.dir) }
        try FileManager.default.removeItem(atPath: missing.dir + "/plugin.sh")
        let c3 = try KubeClient(config: try Kubeconfig.load(paths: [missing.kubeconfig]))
        let r3 = await list(c3)
        #expect(r3.contains("exec plugin ./plugin.sh was not found: install the test plugin"), "\(r3)")
        await c3.shutdown()

        let failing = try plugin(port: api.port, tokens: ["good"])
        defer { try? FileManager.default.removeItem(atPath: failing.dir) }
        try "#!/bin/sh\necho 'token expired: log in again' >&2\nexit 3\n".write(toFile: failing.dir + "/plugin.sh", atomically: true, encoding: .utf8)
        chmod(failing.dir + "/plugin.sh", 0o755)
        let c4 = try KubeClient(config: try Kubeconfig.load(paths: [failing.kubeconfig]))
        let r4 = await list(c4)
        #expect(r4.contains("exec plugin ./plugin.sh failed (exit status 3"), "\(r4)")
        await c4.shutdown()
    }

    /// Basic authentication and impersonation from the kubeconfig reach the server as headers.
    @Test func basicAuthenticationAndImpersonationAreSent() async throws {
        let api = try #require(server())
        defer { api.stop() }
        let dir = NSTemporaryDirectory() + "balancer-kc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        apiVersion: v1
        kind: Config
        current-context: test
        clusters:
        - {name: test, cluster: {server: "http://127.0.0.1:\(api.port)"}}
        users:
        - name: test
          user:
            username: admin
            password: s3cret
            as: system:serviceaccount:kube-system:balancer
            as-groups: [system:serviceaccounts, ops]
            as-user-extra: {reason: [audit]}
        contexts:
        - {name: test, context: {cluster: test, user: test}}
        """.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let client = try KubeClient(config: try Kubeconfig.load(paths: [dir + "/config"]))
        _ = await list(client)
        let h = api.state.withLock { $0.lastHeaders }
        #expect(h["authorization"] == ["Basic " + Data("admin:s3cret".utf8).base64EncodedString()])
        #expect(h["impersonate-user"] == ["system:serviceaccount:kube-system:balancer"])
        #expect(h["impersonate-group"] == ["system:serviceaccounts", "ops"])
        #expect(h["impersonate-extra-reason"] == ["audit"])
        await client.shutdown()
    }
}
