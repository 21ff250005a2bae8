import Crypto
import MapImage

// Target 3: the image verifier and decoder (Sources/MapImage/ImageDecoder.swift and TableDecoder.swift), and what reads a
// verified image: skipTargets, TextRenderer, JSONRenderer and the Resolver.
//
// Input: one mode byte, then the image. A mutated image almost never keeps a valid SHA-256, so
// mode bit 1 rewrites the header's total size to the real one and bit 2 recomputes the digest:
// then the mutation reaches the section and record checks. Mode 0 leaves the image as it is
// (the size and digest checks themselves).
//
// Checked besides crashes: an image that decodes also verifies, and encoding its contents again
// gives back exactly its record sections (the decoder accepts only the encoder's canonical form
// of the tables) and the same contents. The metadata JSON is only compared by value: the decoder
// accepts any JSON spelling of it (whitespace, key order), which the digest covers.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    guard let mode = input.first else { return 0 }
    var bytes = Array(input.dropFirst())
    if bytes.count >= ImageLayout.headerSize {
        if mode & 1 != 0 { put(UInt64(bytes.count), at: 24, in: &bytes) }
        if mode & 2 != 0 {
            bytes.replaceSubrange(32..<64, with: [UInt8](repeating: 0, count: 32))
            bytes.replaceSubrange(32..<64, with: Array(SHA256.hash(data: bytes)))
        }
    }

    let verified = try? ImageDecoder.verify(bytes)
    if let verified {
        for n in verified.nodes.prefix(4) { _ = verified.skipTargets(nodeID: n.id) }
        _ = verified.skipTargets(nodeID: 0)
    }
    let image: MapImage
    do {
        image = try MapImage(bytes: bytes)
    } catch {
        return 0
    }
    check(verified != nil, "the image decodes but does not verify")
    let again = ImageEncoder.encode(image.contents)
    guard let decodedAgain = try? MapImage(bytes: again) else { violated("re-encoding a decoded image gives one that does not decode") }
    check(decodedAgain.contents == image.contents, "re-encoding a decoded image changes its contents")
    for (a, b) in zip(image.header.sections, decodedAgain.header.sections) where a.kind != ImageLayout.metadataKind {
        check(bytes[a.offset..<(a.offset + a.length)] == again[b.offset..<(b.offset + b.length)],
              "re-encoding a decoded image changes its \(a.name) section")
    }
    _ = TextRenderer.render(image)
    _ = JSONRenderer.render(image)
    resolveAll(image.contents)
    return 0
}

func put(_ v: UInt64, at offset: Int, in bytes: inout [UInt8]) {
    for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
}

/// Every frontend, VIP and node address of the image, from a host and from each node (a few),
/// in both host modes.
func resolveAll(_ contents: ImageContents) {
    let resolver = Resolver(contents)
    var destinations: [(SocketAddress, TransportProtocol)] = []
    for f in contents.frontends.prefix(64) { destinations.append((SocketAddress(address: f.key.address, port: f.key.port), f.key.proto)) }
    for v in contents.vips.prefix(16) { destinations.append((SocketAddress(address: v.address, port: 1), .tcp)) }
    for a in contents.nodeAddresses.prefix(16) {
        for f in contents.frontends.prefix(8) { destinations.append((SocketAddress(address: a.address, port: f.key.port), f.key.proto)) }
    }
    let nodes: [UInt32] = [0] + contents.nodes.prefix(3).map(\.id)
    for (d, proto) in destinations {
        for n in nodes {
            for mode in HostMode.allCases { _ = resolver.resolve(d, proto: proto, nodeID: n, hostMode: mode) }
        }
    }
    for n in contents.metadata.nodes.prefix(4) { _ = try? resolver.nodeID(named: n.name) }
}
