import HostSystem
import MapImage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The loader's record-level views (RecordState.swift) over the golden images: a delta between
/// two images turns one's tables into the other's, through any number of intermediate states,
/// and a state that differs in one record is not taken for the image.
@Suite struct RecordStateTests {
    static let golden: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/golden"
    }()

    /// Every golden image, verified, in name order.
    static let images: [(name: String, header: ImageHeader, bytes: [UInt8])] = {
        guard let dir = opendir(golden) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".image") { names.append(name) }
        }
        return names.sorted().compactMap { name in
            guard let bytes = try? FileContents.read(golden + "/" + name), let v = try? ImageDecoder.verify(bytes) else { return nil }
            return (name, v.header, bytes)
        }
    }()

    /// The records of one table of an image as a dictionary.
    func table(_ t: ImageTable, _ header: ImageHeader, _ bytes: [UInt8]) -> [[UInt8]: [UInt8]] {
        let v = ImageTableView(header: header, bytes: bytes, table: t)
        var out: [[UInt8]: [UInt8]] = [:]
        for i in 0..<v.count { out[v.key(at: i)] = v.value(at: i) }
        return out
    }

    @Test func goldenImagesAreThere() {
        #expect(Self.images.count >= 40)
    }

    @Test func deltaBetweenImagesTurnsOneIntoTheOther() {
        let images = Self.images
        for (a, b) in zip(images, images.dropFirst() + images.prefix(1)) {
            let delta = RecordDelta.between(old: a.header, a.bytes, new: b.header, b.bytes)
            var state = RecordState(header: a.header, bytes: a.bytes)
            #expect(state.matches(a.header, a.bytes), "\(a.name) equals itself")
            #expect(state.effective(delta) == delta, "\(a.name) → \(b.name): the merge emits only real changes")
            state.apply(delta)
            #expect(state.matches(b.header, b.bytes), "\(a.name) + delta = \(b.name)")
            #expect(state.delta(to: b.header, b.bytes).isEmpty)
            for t in ImageTable.allCases {
                #expect(state.counts[t] == ImageTableView(header: b.header, bytes: b.bytes, table: t).count, "\(b.name) \(t) count")
                // The records a fresh map is filled with: exactly the image's, in some order.
                let records = state.records(t)
                let stride = ABI.keySize(t) + ABI.valueSize(t)
                var filled: [[UInt8]: [UInt8]] = [:]
                for i in 0..<(records.count / stride) {
                    filled[Array(records[(i * stride)..<(i * stride + ABI.keySize(t))])] = Array(records[(i * stride + ABI.keySize(t))..<((i + 1) * stride)])
                }
                #expect(records.count % stride == 0 && filled == table(t, b.header, b.bytes), "\(a.name) → \(b.name): \(t) records")
            }
        }
    }

    @Test func chainedDeltasAndTheDeltaToAnImage() {
        // a → b → c by deltas; then the delta from that state to a brings it back.
        let images = Self.images
        guard images.count >= 3 else { return }
        for i in stride(from: 0, to: images.count - 2, by: 3) {
            let (a, b, c) = (images[i], images[i + 1], images[i + 2])
            var state = RecordState(header: a.header, bytes: a.bytes)
            state.apply(state.effective(RecordDelta.between(old: a.header, a.bytes, new: b.header, b.bytes)))
            state.apply(state.effective(RecordDelta.between(old: b.header, b.bytes, new: c.header, c.bytes)))
            #expect(state.matches(c.header, c.bytes), "\(a.name) → \(b.name) → \(c.name)")
            #expect(!state.matches(a.header, a.bytes) || a.bytes == c.bytes)
            let back = state.delta(to: a.header, a.bytes)
            state.apply(back)
            #expect(state.matches(a.header, a.bytes), "back to \(a.name)")
            // Applying a delta twice changes nothing the second time.
            #expect(state.effective(back).isEmpty)
        }
    }

    @Test func oneRecordOffIsNotTheImage() throws {
        let a = try #require(Self.images.first { $0.name == "example.image" })
        for t in ImageTable.allCases {
            let v = ImageTableView(header: a.header, bytes: a.bytes, table: t)
            guard v.count > 0 else { continue }
            let key = v.key(at: v.count / 2)
            var value = v.value(at: v.count / 2)
            value[value.count - 1] ^= 0x80

            var changed = RecordState(header: a.header, bytes: a.bytes)
            var d = RecordDelta()
            d.set(t, key: key, value: value)
            changed.apply(changed.effective(d))
            #expect(!changed.matches(a.header, a.bytes), "\(t): a changed value")
            #expect(changed.value(t, key: key) == value)

            var removed = RecordState(header: a.header, bytes: a.bytes)
            d = RecordDelta()
            d.set(t, key: key, value: nil)
            removed.apply(removed.effective(d))
            #expect(!removed.matches(a.header, a.bytes), "\(t): a missing record")
            #expect(removed.counts[t] == v.count - 1)
            #expect(removed.value(t, key: key) == nil)

            var extra = RecordState(header: a.header, bytes: a.bytes)
            d = RecordDelta()
            var newKey = key
            newKey[newKey.count - 1] ^= 0x40
            if v.index(of: newKey) == nil {
                d.set(t, key: newKey, value: v.value(at: 0))
                extra.apply(extra.effective(d))
                #expect(!extra.matches(a.header, a.bytes), "\(t): an extra record")
                #expect(extra.counts[t] == v.count + 1)
            }
            // A delete of an absent key and a write of the same value are no changes.
            d = RecordDelta()
            d.set(t, key: newKey, value: nil)
            d.set(t, key: v.key(at: 0), value: v.value(at: 0))
            if v.index(of: newKey) == nil { #expect(RecordState(header: a.header, bytes: a.bytes).effective(d).isEmpty) }
        }
    }

    @Test func binarySearchFindsEveryKey() {
        for image in Self.images.prefix(10) {
            for t in ImageTable.allCases {
                let v = ImageTableView(header: image.header, bytes: image.bytes, table: t)
                for i in 0..<v.count { #expect(v.index(of: v.key(at: i)) == i) }
                #expect(v.index(of: [UInt8](repeating: 0xFF, count: v.keySize)) == nil || v.count > 0)
            }
        }
    }
}
