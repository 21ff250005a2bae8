import ArgumentParser
import Compiler
import Manifests
import MapImage

/// How manifests become an image, for `compile` and `watch` alike.
struct ManifestOptions: ParsableArguments {
    @Flag(help: "Write (or load) the image despite policy errors, leaving the offending policy frontends out.")
    var keepGoing = false

    @Option(help: "Redirects per second per node for LocalRedirectPolicies without spec.redirectRateLimit (0: none).")
    var redirectRateLimit: UInt32 = 0

    @Option(help: "Refuse a manifest file larger than this (bytes, or with Ki/Mi/Gi).")
    var maxFileBytes = ByteSize(bytes: InputLimits.defaultMaxFileBytes)

    @Option(name: .customLong("exclude"), parsing: .singleValue,
            help: ArgumentHelp("Leave paths out of a directory's walk (repeatable; a glob: without / it matches a name at any depth, with / a path below the directory).",
                               valueName: "GLOB"))
    var exclude: [String] = []

    @Option(name: .customLong("service-cidr"), parsing: .singleValue,
            help: ArgumentHelp("A service CIDR (repeatable), besides ServiceCIDR objects: connects to its addresses that no service answers are refused, as kube-proxy does.",
                               valueName: "CIDR"))
    var serviceCIDRTexts: [String] = []

    /// The --service-cidr values; `validate` has refused any that is not a canonical CIDR.
    var serviceCIDRs: [IPPrefix] { serviceCIDRTexts.compactMap { IPPrefix($0) } }

    @Option(name: .customLong("allowed-external-cidrs"), parsing: .singleValue,
            help: ArgumentHelp("The only addresses externalIPs, LoadBalancer ingress IPs and policy addresses may take (repeatable; "
                               + "others are errors, left out with --keep-going). docs/security.md says why.", valueName: "CIDR"))
    var allowedExternalTexts: [String] = []

    func validate() throws {
        for (flag, texts) in [("--service-cidr", serviceCIDRTexts), ("--allowed-external-cidrs", allowedExternalTexts)] {
            for text in texts where IPPrefix(text) == nil {
                var hint = "expected a network address and a prefix length, such as 10.96.0.0/12 or fd00:10:96::/108"
                if let slash = text.firstIndex(of: "/"), let a = IPAddress(text[..<slash]), let n = Int(text[text.index(after: slash)...]),
                   let masked = IPPrefix.masking(a, prefixLength: n) {
                    hint = "host bits are set; did you mean \(masked)?"
                }
                throw ValidationError("\(flag) \(text): \(hint)")
            }
        }
    }

    var compileOptions: CompileOptions {
        CompileOptions(defaultRedirectRateLimit: redirectRateLimit, serviceCIDRs: serviceCIDRs,
                       allowedExternalCIDRs: allowedExternalTexts.isEmpty ? nil : allowedExternalTexts.compactMap { IPPrefix($0) })
    }

    var inputLimits: InputLimits { InputLimits(maxFileBytes: maxFileBytes.bytes, exclude: exclude) }
}
