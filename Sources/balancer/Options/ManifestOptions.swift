import ArgumentParser
import Compiler
import Manifests

/// How manifests become an image, for `compile` and `watch` alike.
struct ManifestOptions: ParsableArguments {
    @Flag(help: "Write (or load) the image despite policy errors, leaving the offending policy frontends out.")
    var keepGoing = false

    @Option(help: "Redirects per second per node for LocalRedirectPolicies without spec.redirectRateLimit (0: none).")
    var redirectRateLimit: UInt32 = 0

    @Option(help: "Refuse a manifest file larger than this (bytes, or with Ki/Mi/Gi).")
    var maxFileBytes = ByteSize(bytes: InputLimits.defaultMaxFileBytes)

    var compileOptions: CompileOptions { CompileOptions(defaultRedirectRateLimit: redirectRateLimit) }

    var inputLimits: InputLimits { InputLimits(maxFileBytes: maxFileBytes.bytes) }
}
