import ArgumentParser
import HostSystem
import MapImage

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign an image: a detached signature cosign and openssl verify.",
        discussion: """
        Writes the base64 text of an ECDSA P-256 signature (DER) over the image's SHA-256 — what \
        `cosign sign-blob --key` writes and `openssl dgst -sha256 -verify PUB.pem -signature \
        <(base64 -d SIG) IMAGE` checks — or of an Ed25519 signature over its bytes, to IMAGE.sig \
        (or -o). KEY.pem is a PEM private key (PKCS#8 or SEC1), not encrypted. The image is \
        verified first: only a valid image is signed.
        """)

    @OptionGroup var image: ImageArgument

    @Option(help: ArgumentHelp("The private key (PEM: ECDSA P-256 or Ed25519).", valueName: "key.pem"))
    var key: String

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Where to write the signature (default: IMAGE.sig).", valueName: "sig"))
    var output: String?

    func validate() throws {
        if image.path == "-" && output == nil { throw ValidationError("an image from standard input needs -o for its signature") }
    }

    func run() throws {
        let bytes = try image.bytes()
        _ = try CommandError.wrapping("\(PrintableText.escape(image.path)): ") { try MapImage(bytes: bytes) }
        let signingKey = try CommandError.wrapping { try SigningKey.read(key) }
        let raw = try CommandError.wrapping { try signingKey.sign(bytes) }
        let target = output ?? image.path + ".sig"
        try CommandError.wrapping("cannot write the signature: ") { try FileContents.writeAtomically(Array(ImageSignature.text(raw).utf8), to: target) }
        printError("signed \(PrintableText.escape(image.path)) with \(signingKey.publicKey.algorithm) key \(PrintableText.escape(key)): \(PrintableText.escape(target))")
    }
}
