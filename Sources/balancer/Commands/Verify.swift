import ArgumentParser
import HostSystem
import MapImage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check an image's detached signature against a public key.",
        discussion: """
        The signature is IMAGE.sig unless --signature names it: base64 of an ECDSA P-256 \
        signature (DER) over the image's SHA-256, as `balancer sign`, `cosign sign-blob` and \
        `openssl dgst -sha256 -sign … | base64` make it, or of an Ed25519 signature. --key is \
        a PEM public key (a file, or a directory of *.pem/*.pub keys: valid when one of them \
        made it). Exit status: 0 valid, 1 not valid, 2 error (a file or key that cannot be read).
        """)

    @OptionGroup var image: ImageArgument

    @Option(help: ArgumentHelp("The public key (PEM), or a directory of them; repeatable.", valueName: "pub.pem"))
    var key: [String]

    @Option(help: ArgumentHelp("The signature file (default: IMAGE.sig).", valueName: "sig"))
    var signature: String?

    func validate() throws {
        if key.isEmpty { throw ValidationError("--key is required") }
        if image.path == "-" && signature == nil { throw ValidationError("an image from standard input needs --signature") }
    }

    func run() throws {
        let keys: TrustedKeys, bytes: [UInt8], sig: [UInt8]
        do {
            bytes = try image.bytes()
            keys = try CommandError.wrapping { try TrustedKeys.read(key) }
            let sigPath = signature ?? defaultSignaturePath(image.path)
            let text = try CommandError.wrapping("cannot read the signature ") { try FileContents.read(sigPath) }
            sig = try CommandError.wrapping { try ImageSignature.raw(text, file: sigPath) }
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        do {
            let signer = try keys.signer(of: bytes, signature: sig, imageName: image.path)
            print("valid: \(PrintableText.escape(image.path)) was signed by \(PrintableText.escape(signer))")
        } catch {
            printError("invalid: \(error)")
            throw ExitCode(1)
        }
    }
}
