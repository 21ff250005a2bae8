import Foundation
import Testing

/// `balancer sign` and `verify` against openssl, both ways, for ECDSA P-256 and Ed25519 keys
/// (cosign sign-blob's format: base64 of the DER ECDSA signature over the file's SHA-256), and
/// the keys balancer refuses, in words.
extension CLITests {
    @Test func signaturesInteroperateWithOpenSSL() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func sh(_ script: String) throws -> Run { try shell("cd \(dir) && " + script) }
        let setup = try sh("""
            "$B" compile \(CLITests.root)/fixtures/example -o x.image 2>/dev/null &&
            openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && openssl pkey -in ec.pem -pubout -out ec.pub &&
            openssl genpkey -algorithm ed25519 -out ed.pem && openssl pkey -in ed.pem -pubout -out ed.pub &&
            openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null &&
            openssl pkcs8 -topk8 -in ec.pem -out encrypted.pem -passout pass:secret
            """)
        try #require(setup.status == 0, "\(setup.stderr)")

        // balancer signs, openssl verifies (ECDSA over the SHA-256; Ed25519 over the bytes).
        let ours = try sh(#""$B" sign x.image --key ec.pem && base64 -d x.image.sig > sig.der && openssl dgst -sha256 -verify ec.pub -signature sig.der x.image"#)
        #expect(ours.status == 0 && ours.stdout.contains("Verified OK"), "\(ours.stdout)\(ours.stderr)")
        let ed = try sh(#""$B" sign x.image --key ed.pem -o ed.sig && base64 -d ed.sig > ed.raw && openssl pkeyutl -verify -pubin -inkey ed.pub -rawin -in x.image -sigfile ed.raw"#)
        #expect(ed.status == 0 && ed.stdout.contains("Signature Verified Successfully"), "\(ed.stdout)\(ed.stderr)")
        // openssl signs (base64 wrapped at 76 columns), balancer verifies.
        let theirs = try sh(#"openssl dgst -sha256 -sign ec.pem x.image | base64 > o.sig && "$B" verify x.image --key ec.pub --signature o.sig"#)
        #expect(theirs.status == 0 && theirs.stdout == "valid: x.image was signed by ec.pub\n", "\(theirs.stdout)\(theirs.stderr)")
        let edTheirs = try sh(#"openssl pkeyutl -sign -inkey ed.pem -rawin -in x.image | base64 > o-ed.sig && "$B" verify x.image --key ed.pub --signature o-ed.sig"#)
        #expect(edTheirs.status == 0, "\(edTheirs.stdout)\(edTheirs.stderr)")

        // Not valid: another key, a changed image (exit 1); a key directory finds the signer.
        let other = try sh(#""$B" verify x.image --key ed.pub"#)
        #expect(other.status == 1 && other.stderr.contains("not valid for the trusted key (ed.pub)"), "\(other.stderr)")
        let changed = try sh(#"cp x.image y.image && printf x >> y.image && "$B" verify y.image --key ec.pub --signature x.image.sig"#)
        #expect(changed.status == 1 || changed.status == 2, "\(changed.stderr)")
        let keys = try sh(#"mkdir keys && cp ec.pub ed.pub keys/ && "$B" verify x.image --key keys"#)
        #expect(keys.status == 0 && keys.stdout.contains("signed by keys/ec.pub"), "\(keys.stdout)\(keys.stderr)")

        // Errors (exit 2 for verify): no signature, keys balancer does not take, said in words.
        let missing = try sh(#"rm x.image.sig; "$B" verify x.image --key ec.pub"#)
        #expect(missing.status == 2 && missing.stderr.contains("cannot read the signature"), "\(missing.stderr)")
        let encrypted = try sh(#""$B" sign x.image --key encrypted.pem"#)
        #expect(encrypted.status == 1 && encrypted.stderr.contains("the private key is encrypted, and balancer does not ask for passphrases"), "\(encrypted.stderr)")
        let rsa = try sh(#""$B" sign x.image --key rsa.pem"#)
        #expect(rsa.status == 1 && rsa.stderr.contains("not an ECDSA P-256 or Ed25519 private key"), "\(rsa.stderr)")
        let cosign = try sh(#"printf -- '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n' > cosign.key && "$B" sign x.image --key cosign.key"#)
        #expect(cosign.status == 1 && cosign.stderr.contains("a cosign key"), "\(cosign.stderr)")
        let priv = try sh(#""$B" sign x.image --key ec.pem && "$B" verify x.image --key ec.pem"#)
        #expect(priv.status == 2 && priv.stderr.contains("a private key; verification takes the public key"), "\(priv.stderr)")
        let notImage = try sh(#"echo junk > junk.image && "$B" sign junk.image --key ec.pem"#)
        #expect(notImage.status == 1 && notImage.stderr.contains("junk.image: invalid image"), "\(notImage.stderr)")
    }

    /// `load --trust-key` refuses before the datapath is opened (no kernel needed to see it):
    /// unsigned, another key's, a signature that is not base64, --signature without keys.
    @Test func loadUnderTrustKeyRefusesInWords() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func sh(_ script: String) throws -> Run { try shell("cd \(dir) && " + script) }
        let setup = try sh(#""$B" compile \#(CLITests.root)/fixtures/example -o x.image 2>/dev/null && openssl genpkey -algorithm ed25519 -out k.pem && openssl pkey -in k.pem -pubout -out k.pub"#)
        try #require(setup.status == 0, "\(setup.stderr)")
        let unsigned = try sh(#""$B" load x.image --trust-key k.pub --pin-dir /nonexistent"#)
        #expect(unsigned.status == 1 && unsigned.stderr.contains("refused: x.image has no signature (x.image.sig does not exist)"), "\(unsigned.stderr)")
        let garbage = try sh(#"echo '!!!' > x.image.sig && "$B" load x.image --trust-key k.pub --pin-dir /nonexistent"#)
        #expect(garbage.status == 1 && garbage.stderr.contains("refused: x.image.sig: the signature is not base64"), "\(garbage.stderr)")
        let signed = try sh(#""$B" sign x.image --key k.pem && "$B" load x.image --trust-key k.pub --pin-dir /nonexistent"#)
        #expect(signed.status == 1 && signed.stderr.contains("/nonexistent") && !signed.stderr.contains("refused"), "past the check, the datapath: \(signed.stderr)")
        let usage = try sh(#""$B" load x.image --signature x.image.sig"#)
        #expect(usage.status == 64 && usage.stderr.contains("--trust-key, which is missing"), "\(usage.stderr)")
    }

    /// `watch --output-dir --sign-key` signs each image it writes; `verify` and `load
    /// --trust-key` of the `latest` link find the signature of the file it points to.
    @Test func watchSignsWhatItWrites() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try shell("""
            cd \(dir) && mkdir out && openssl genpkey -algorithm ed25519 -out k.pem && openssl pkey -in k.pem -pubout -out k.pub &&
            { timeout 2 "$B" watch --dir \(CLITests.root)/fixtures/example --output-dir out --sign-key k.pem 2>/dev/null; true; } &&
            ls out/*.image.sig >/dev/null && "$B" verify out/latest --key k.pub
            """)
        #expect(r.status == 0 && r.stdout.contains("valid: out/latest was signed by k.pub"), "\(r.stdout)\(r.stderr)")
        let usage = try run(["watch", "--dir", dir, "--sign-key", dir + "/k.pem"])
        #expect(usage.status == 64 && usage.stderr.contains("--sign-key signs the images --output-dir writes"), "\(usage.stderr)")
    }
}
