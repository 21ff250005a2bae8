import ArgumentParser
import HostSystem
import MapImage

/// `--trust-key` (and `--signature`) of the commands that load an image made elsewhere (`load`):
/// with trusted keys, an image without a valid signature by one of them is refused before any
/// map is touched.
struct TrustOptions: ParsableArguments {
    @Option(name: .customLong("trust-key"), help: ArgumentHelp("Load only images signed by this public key (PEM), or by one in this directory of *.pem/*.pub keys; repeatable.",
                                                             valueName: "pub.pem|dir"))
    var keys: [String] = []

    @Option(help: ArgumentHelp("The image's signature (default: IMAGE.sig), with --trust-key.", valueName: "sig"))
    var signature: String?

    func validate() throws {
        if signature != nil && keys.isEmpty { throw ValidationError("--signature is checked against --trust-key, which is missing") }
    }

    /// Checks `bytes` (read from `imagePath`) when keys are trusted; the error says which check
    /// failed: a key that cannot be read, no signature, one that is not base64, or one no trusted
    /// key made. Returns the key that signed it.
    @discardableResult
    func check(_ bytes: [UInt8], imagePath: String) throws(CommandError) -> String? {
        guard !keys.isEmpty else { return nil }
        let trusted = try CommandError.wrapping("--trust-key: ") { try TrustedKeys.read(keys) }
        guard let sigPath = signature ?? (imagePath == "-" ? nil : defaultSignaturePath(imagePath)) else {
            throw CommandError(description: "refused: an image from standard input needs --signature under --trust-key")
        }
        guard FileSystem.exists(sigPath) else {
            throw CommandError(description: "refused: \(PrintableText.escape(imagePath)) has no signature (\(PrintableText.escape(sigPath)) does not exist) and --trust-key requires one")
        }
        let text = try CommandError.wrapping("refused: cannot read the signature ") { try FileContents.read(sigPath) }
        let raw = try CommandError.wrapping("refused: ") { try ImageSignature.raw(text, file: sigPath) }
        return try CommandError.wrapping("refused: ") { try trusted.signer(of: bytes, signature: raw, imageName: imagePath) }
    }
}

/// IMAGE.sig; for a symbolic link without one (`watch --output-dir`'s `latest`), the signature
/// of the file it points to, which the watcher wrote before moving the link.
func defaultSignaturePath(_ imagePath: String) -> String {
    let direct = imagePath + ".sig"
    guard !FileSystem.exists(direct), let target = FileSystem.linkTarget(imagePath) else { return direct }
    let resolved = target.hasPrefix("/") ? target : (imagePath.contains("/") ? String(imagePath[..<(imagePath.lastIndex(of: "/") ?? imagePath.endIndex)]) + "/" : "") + target
    return resolved + ".sig"
}
