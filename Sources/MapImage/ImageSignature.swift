// Signatures read keys and files through HostSystem; the fuzzers build MapImage without it
// (fuzz/build.sh), and sign nothing.
#if canImport(HostSystem)
import Crypto
import FoundationEssentials
import HostSystem

/// Detached signatures of image files, in the format `cosign sign-blob --key` writes and
/// `openssl dgst -sha256 -sign` makes (base64 of it): the base64 text of
/// - an ECDSA P-256 signature, DER-encoded, over the file's SHA-256;
/// - or an Ed25519 signature over the file's bytes (Ed25519 hashes internally; `openssl pkeyutl
///   -sign -rawin` makes the same).
/// Keys are PEM: PKCS#8 or SEC1 private keys, SubjectPublicKeyInfo public keys (what openssl
/// writes, and `cosign.pub`). Encrypted private keys are refused in words: balancer never asks
/// for a passphrase. swift-crypto does every cryptographic step; this file only frames.
public enum ImageSignature {
    /// A signature as the file holds it: base64, no newline (as cosign writes it).
    public static func text(_ raw: [UInt8]) -> String { Data(raw).base64EncodedString() }

    /// The raw signature of a signature file's text: base64, lines and surrounding space allowed
    /// (`openssl … | base64` wraps at 76 columns).
    public static func raw(_ text: [UInt8], file: String) throws(SignatureError) -> [UInt8] {
        let compact = text.filter { !($0 == 0x0A || $0 == 0x0D || $0 == 0x20 || $0 == 0x09) }
        guard !compact.isEmpty else { throw SignatureError("\(file): the signature file is empty") }
        guard let data = Data(base64Encoded: Data(compact)) else { throw SignatureError("\(file): the signature is not base64") }
        return Array(data)
    }
}

public struct SignatureError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// One PEM block: its label and DER bytes.
struct PEMBlock {
    var label: String
    var der: [UInt8]
    var headers: [String]

    static func parse(_ text: String, file: String) throws(SignatureError) -> PEMBlock {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            throw SignatureError("\(file): not a PEM file (no -----BEGIN line)")
        }
        let label = String(lines[begin].dropFirst("-----BEGIN ".count).dropLast(5))
        guard let end = lines[begin...].firstIndex(of: "-----END \(label)-----") else { throw SignatureError("\(file): the PEM block \(label) has no END line") }
        let body = lines[(begin + 1)..<end]
        let headers = body.filter { $0.contains(":") }
        guard let der = Data(base64Encoded: body.filter { !$0.contains(":") }.joined()) else {
            throw SignatureError("\(file): the PEM block \(label) is not base64")
        }
        return PEMBlock(label: label, der: Array(der), headers: headers)
    }

    /// What is said of a key balancer cannot use, before anything else is tried.
    func refusal(file: String) -> String? {
        if label == "ENCRYPTED PRIVATE KEY" || headers.contains(where: { $0.hasPrefix("Proc-Type:") && $0.contains("ENCRYPTED") }) {
            return "\(file): the private key is encrypted, and balancer does not ask for passphrases; write a decrypted copy for signing "
                + "(`openssl pkey -in \(file) -out plain.pem`) and keep it where only the signer reads it"
        }
        if label.contains("COSIGN") || label.contains("SIGSTORE") {
            return "\(file): a cosign key (\(label)) is encrypted in cosign's own format; sign with cosign, or with a PEM key "
                + "(`openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`); cosign.pub verifies with balancer"
        }
        if label.hasPrefix("RSA ") { return "\(file): an RSA key; balancer signs and verifies with ECDSA P-256 or Ed25519 keys" }
        return nil
    }

    /// The Ed25519 key of a PKCS#8 (private) or SubjectPublicKeyInfo (public) DER: the
    /// algorithm id 1.3.101.112 in the fixed framing RFC 8410 gives these keys.
    static let ed25519PrivatePrefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let ed25519PublicPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    func ed25519(prefix: [UInt8]) -> [UInt8]? {
        der.count == prefix.count + 32 && Array(der.prefix(prefix.count)) == prefix ? Array(der.suffix(32)) : nil
    }
}

/// A private key that signs images (`balancer sign`, `watch --sign-key`). Unchecked Sendable:
/// swift-crypto's keys are immutable once made, and signing only reads them (BoringSSL's
/// signing functions take the key const), so a watcher's threads may share one.
public enum SigningKey: @unchecked Sendable {
    case p256(P256.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    public static func read(_ path: String) throws(SignatureError) -> SigningKey {
        let text = try readText(path, what: "key")
        let block = try PEMBlock.parse(text, file: path)
        if let refusal = block.refusal(file: path) { throw SignatureError(refusal) }
        if let seed = block.ed25519(prefix: PEMBlock.ed25519PrivatePrefix) {
            do { return .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: seed)) } catch {
                throw SignatureError("\(path): an unusable Ed25519 key: \(error)")
            }
        }
        guard block.label == "PRIVATE KEY" || block.label == "EC PRIVATE KEY" else {
            throw SignatureError("\(path): a PEM \(block.label), not a private key (PRIVATE KEY or EC PRIVATE KEY)")
        }
        do { return .p256(try P256.Signing.PrivateKey(pemRepresentation: text)) } catch {
            throw SignatureError("\(path): not an ECDSA P-256 or Ed25519 private key (\(error))")
        }
    }

    /// The raw signature of `bytes` (DER for ECDSA).
    public func sign(_ bytes: [UInt8]) throws(SignatureError) -> [UInt8] {
        do {
            switch self {
            case .p256(let k): return Array(try k.signature(for: bytes).derRepresentation)
            case .ed25519(let k): return Array(try k.signature(for: bytes))
            }
        } catch {
            throw SignatureError("signing failed: \(error)")
        }
    }

    public var publicKey: VerifyingKey {
        switch self {
        case .p256(let k): .p256(k.publicKey)
        case .ed25519(let k): .ed25519(k.publicKey)
        }
    }
}

/// A public key that verifies image signatures (`balancer verify`, `--trust-key`); unchecked
/// Sendable as SigningKey is.
public enum VerifyingKey: @unchecked Sendable {
    case p256(P256.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    public static func read(_ path: String) throws(SignatureError) -> VerifyingKey {
        let text = try readText(path, what: "public key")
        let block = try PEMBlock.parse(text, file: path)
        if let refusal = block.refusal(file: path) { throw SignatureError(refusal) }
        if block.label.contains("PRIVATE KEY") {
            throw SignatureError("\(path): a private key; verification takes the public key (`openssl pkey -in \(path) -pubout`)")
        }
        guard block.label == "PUBLIC KEY" else { throw SignatureError("\(path): a PEM \(block.label), not a PUBLIC KEY") }
        if let raw = block.ed25519(prefix: PEMBlock.ed25519PublicPrefix) {
            do { return .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: raw)) } catch {
                throw SignatureError("\(path): an unusable Ed25519 key: \(error)")
            }
        }
        do { return .p256(try P256.Signing.PublicKey(pemRepresentation: text)) } catch {
            throw SignatureError("\(path): not an ECDSA P-256 or Ed25519 public key (\(error))")
        }
    }

    public func isValid(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        switch self {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: bytes)
        case .ed25519(let k):
            return k.isValidSignature(signature, for: bytes)
        }
    }

    public var algorithm: String {
        switch self {
        case .p256: "ECDSA P-256"
        case .ed25519: "Ed25519"
        }
    }
}

/// The keys `--trust-key` names: files, or every `*.pem` and `*.pub` of a directory.
public struct TrustedKeys: Sendable {
    public var keys: [(name: String, key: VerifyingKey)]

    public static func read(_ paths: [String]) throws(SignatureError) -> TrustedKeys {
        var keys: [(name: String, key: VerifyingKey)] = []
        for path in paths {
            if let names = FileSystem.entries(path) {
                let files = names.filter { $0.hasSuffix(".pem") || $0.hasSuffix(".pub") }.sorted()
                guard !files.isEmpty else { throw SignatureError("\(path): a directory with no *.pem or *.pub key") }
                for f in files { keys.append(("\(path)/\(f)", try VerifyingKey.read("\(path)/\(f)"))) }
            } else {
                keys.append((path, try VerifyingKey.read(path)))
            }
        }
        return TrustedKeys(keys: keys)
    }

    /// The key that made `signature` over `image`; otherwise the reason, naming what failed.
    public func signer(of image: [UInt8], signature: [UInt8], imageName: String) throws(SignatureError) -> String {
        if let match = keys.first(where: { $0.key.isValid(signature, for: image) }) { return match.name }
        let names = keys.map(\.name).joined(separator: ", ")
        throw SignatureError("\(imageName): the signature is not valid for \(keys.count == 1 ? "the trusted key" : "any of the \(keys.count) trusted keys") (\(names)): "
                             + "signed by another key, or the image was changed after signing")
    }
}

private func readText(_ path: String, what: String) throws(SignatureError) -> String {
    do {
        return String(decoding: try FileContents.read(path), as: UTF8.self)
    } catch {
        throw SignatureError("cannot read \(what) \(error)")
    }
}
#endif
