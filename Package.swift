// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "balancer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "balancer", targets: ["balancer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // The datapath ABI: one header in bpf/include shared by the BPF programs and Swift.
        .target(
            name: "CBalancerABI",
            path: "bpf",
            exclude: ["programs"],
            sources: ["abi_check.c"],
            publicHeadersPath: "include"
        ),
        // The splitter's byte loops (Sources/Compiler/Syntax/Splitter.swift).
        .target(name: "CManifestScan"),
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson", providers: [.apt(["libjansson-dev"])]),
        .target(
            name: "MapImage",
            dependencies: [
                "CBalancerABI",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Compiler",
            dependencies: [
                "MapImage", "CYAML", "CJansson", "CManifestScan",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // libbpf behind one wrapper layer; knows nothing of Kubernetes.
        .target(name: "Loader", dependencies: ["MapImage", "CLibbpf", "CBalancerABI"]),
        .executableTarget(
            name: "balancer",
            dependencies: [
                "Compiler", "MapImage", "Loader",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "MapImageTests", dependencies: ["MapImage", "CBalancerABI", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CompilerTests", dependencies: ["Compiler", "MapImage"]),
        .testTarget(name: "BalancerCLITests", dependencies: ["Compiler", "MapImage"]),
    ]
)
