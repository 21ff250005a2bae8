import ArgumentParser
import Loader
import MapImage

struct CheckLive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-live",
        abstract: "Compare the live generation's tables with an image, record by record.",
        discussion: """
        Reads every record of the live generation's eight tables from the kernel and compares \
        them with the image's (verified first): prints one verdict line, then up to 20 \
        differences (table, key, live and image values in hex; missing = the image has the key \
        and the datapath not, extra = the reverse). It checks what the kernel holds, however it \
        was written (whole loads, incremental writes by `watch`, rollbacks). Exit status: 0 when \
        equal, 1 when they differ, 2 on error (an unreadable or invalid image, no datapath).
        """)

    @OptionGroup var image: ImageArgument

    @OptionGroup var pinDir: PinDirOption

    func run() throws {
        let verified: VerifiedImage
        do {
            let bytes = try image.bytes()
            do {
                verified = try ImageDecoder.verify(bytes, nodes: false)
            } catch {
                throw CommandError(description: "\(PrintableText.escape(image.path)): \(error)")
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let result: Datapath.LiveComparison
        do {
            result = try Datapath(pinDir: pinDir.path).compareLive(with: verified, limit: 20)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let image = self.image.path
        let named = result.liveDigest.map { $0 == verified.header.digestHex ? "; recorded as this image" : "; recorded as sha256 \($0)" }
            ?? "; no image digest recorded"
        if result.isEqual {
            printLine("equal: live generation \(result.generation) holds exactly the \(result.imageRecords) records of \(image) (sha256 \(verified.header.digestHex))\(named)")
            return
        }
        printLine("different: live generation \(result.generation) differs from \(image) (sha256 \(verified.header.digestHex)) in \(counted(result.differenceCount, "record")): "
              + "\(result.missing) missing, \(result.extra) extra, \(result.changed) changed (\(result.liveRecords) live, \(result.imageRecords) in the image)\(named)")
        for d in result.differences {
            let key = Hex.bytes(d.key)
            switch (d.live, d.image) {
            case (nil, let i?): print("  \(d.table) \(key): missing; image \(Hex.bytes(i))")
            case (let l?, nil): print("  \(d.table) \(key): extra; live \(Hex.bytes(l))")
            case (let l?, let i?): print("  \(d.table) \(key): live \(Hex.bytes(l)) image \(Hex.bytes(i))")
            case (nil, nil): break
            }
        }
        if result.differenceCount > result.differences.count { print("  … \(result.differenceCount - result.differences.count) more") }
        throw ExitCode(1)
    }
}
