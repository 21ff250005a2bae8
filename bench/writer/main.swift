// writer-bench: GenerationWriter against a real pinned datapath, with two images A and B.
//
//   writer-bench --pin-dir DIR A.image B.image [--rounds N] [--interval-ms MS] [--check]
//
// In order: load A (fresh fill), load B (the other generation, fresh), load A (written as the
// records that differ), then N applies of the RecordDelta A→B and B→A alternately (what an
// incremental compile hands the writer), MS apart (0: back to back, so each write waits for the
// grace period the previous flip started); confirm of the live image (true) and of the other
// (false); load of the live image (nothing written); a fresh `Datapath.load` for comparison.
// Every step's wall time and phases are printed; with --check the live tables are read back
// (`compareLive`) after every step and must equal the image they should hold (exit 1 when not).
// Also measures the kernel's grace period alone (an update of a private map-in-map).
//
// Run it only inside a sandbox whose bpffs DIR holds the datapath's maps (bench/writer.sh,
// e2e/incremental.sh).
import Dispatch
import HostSystem
import Loader
import MapImage

#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func ms(_ s: Double) -> String {
    let v = (s * 100_000).rounded() / 100
    return "\(v)"
}

func fail(_ message: String) -> Never {
    print("FAIL \(message)")
    exit(1)
}

var args = Array(CommandLine.arguments.dropFirst())
var pinDir = "", rounds = 20, intervalMs = 50, check = false
var files: [String] = []
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--pin-dir": pinDir = args.isEmpty ? "" : args.removeFirst()
    case "--rounds": rounds = Int(args.isEmpty ? "" : args.removeFirst()) ?? rounds
    case "--interval-ms": intervalMs = Int(args.isEmpty ? "" : args.removeFirst()) ?? intervalMs
    case "--check": check = true
    default: files.append(a)
    }
}
guard !pinDir.isEmpty, files.count == 2 else {
    print("usage: writer-bench --pin-dir DIR A.image B.image [--rounds N] [--interval-ms MS] [--check]")
    exit(2)
}

let imageA: VerifiedImage, imageB: VerifiedImage
do {
    imageA = try ImageDecoder.verify(try FileContents.read(files[0]), nodes: false)
    imageB = try ImageDecoder.verify(try FileContents.read(files[1]), nodes: false)
} catch {
    fail("\(error)")
}
let datapath: Datapath
do { datapath = try Datapath(pinDir: pinDir) } catch { fail("\(error)") }
let writer = GenerationWriter(datapath: datapath, node: nil, hostMode: .pod)
var failures = 0

@MainActor func verifyLive(_ label: String, _ image: VerifiedImage, name: String, always: Bool = false) {
    guard check || always else { return }
    do {
        let c = try datapath.compareLive(with: image, limit: 3)
        if !c.isEqual {
            failures += 1
            print("FAIL \(label): the live generation is not \(name): \(c.missing) missing, \(c.extra) extra, \(c.changed) changed")
        }
    } catch {
        failures += 1
        print("FAIL \(label): \(error)")
    }
}

@MainActor func show(_ label: String, _ r: Datapath.LoadReport, wall: Double) {
    let phases = r.phases.filter { $0.1 >= 0.00005 || $0.0 == "wait for grace period" || $0.0 == "flip" }
        .map { "\($0.0) \(ms($0.1))" }.joined(separator: ", ")
    var how = r.method.rawValue
    if r.method == .delta { how += " (\(r.written) written, \(r.deleted) deleted\(r.refilled.isEmpty ? "" : "; refilled \(r.refilled.joined(separator: " "))"))" }
    if r.method == .fresh { how += " (\(r.written) records)" }
    print("\(label): generation \(r.generation), \(how), \(ms(wall)) ms [\(phases)]")
}

@MainActor func load(_ label: String, _ image: VerifiedImage, name: String, expect: Datapath.LoadReport.Method) {
    let t = now()
    do {
        let r = try writer.load(image: image.bytes)
        show(label, r, wall: now() - t)
        if r.method != expect {
            failures += 1
            print("FAIL \(label): written as \(r.method.rawValue), expected \(expect.rawValue)")
        }
    } catch {
        fail("\(label): \(error)")
    }
    verifyLive(label, image, name: name)
}

// The kernel's grace period alone: what the writer waits for after a flip (in the background),
// an update of a map-in-map of its own.
load("load A (first load: fresh fill)", imageA, name: "A", expect: .fresh)
var graces: [Double] = []
do {
    let gp = try GracePeriod()
    for _ in 0..<20 {
        let t = now()
        try gp.wait()
        graces.append(now() - t)
    }
} catch {
    fail("grace period: \(error)")
}
graces.sort()
if !graces.isEmpty {
    print("grace period (synchronize_rcu after a map-in-map update, 20 runs): min \(ms(graces[0])) ms, median \(ms(graces[graces.count / 2])) ms, max \(ms(graces[graces.count - 1])) ms")
}

load("load B (the other generation: fresh fill)", imageB, name: "B", expect: .fresh)
load("load A (whole image, only differing records)", imageA, name: "A", expect: .delta)

let t0 = now()
let toB = RecordDelta.between(old: imageA.header, imageA.bytes, new: imageB.header, imageB.bytes)
let toA = RecordDelta.between(old: imageB.header, imageB.bytes, new: imageA.header, imageA.bytes)
print("deltas A→B and B→A: \(toB.count) and \(toA.count) records (computed in \(ms(now() - t0)) ms)")

var applies: [Double] = [], waits: [Double] = []
for i in 0..<rounds {
    let toward = i % 2 == 0 ? toB : toA
    let t = now()
    let r: Datapath.LoadReport
    do { r = try writer.apply(toward) } catch { fail("apply \(i): \(error)") }
    let wall = now() - t
    applies.append(wall)
    waits.append(r.phases.first { $0.0 == "wait for grace period" }?.1 ?? 0)
    if i < 4 || i == rounds - 1 { show("apply \(i) (\(i % 2 == 0 ? "A→B" : "B→A"))", r, wall: wall) }
    if check || i == rounds - 1 {
        let t = now()
        verifyLive("apply \(i)", i % 2 == 0 ? imageB : imageA, name: i % 2 == 0 ? "B" : "A", always: true)
        if i == rounds - 1 { print("the live tables read back and compared with the image: \(failures == 0 ? "equal" : "NOT equal") (\(ms(now() - t)) ms)") }
    }
    if intervalMs > 0 { usleep(UInt32(intervalMs) * 1000) }
}
let live = rounds % 2 == 1 ? imageB : imageA, other = rounds % 2 == 1 ? imageA : imageB
if !applies.isEmpty {
    let s = applies.sorted(), w = waits.sorted()
    let p99 = s[min(s.count - 1, Int((Double(s.count) * 0.99).rounded(.up)) - 1)]
    print("apply + flip, \(rounds) rounds \(intervalMs) ms apart: median \(ms(s[s.count / 2])) ms, p99 \(ms(p99)) ms, max \(ms(s[s.count - 1])) ms; "
          + "of which waiting for the grace period: median \(ms(w[w.count / 2])) ms, max \(ms(w[w.count - 1])) ms")
}

var t = now()
let confirmed = writer.confirm(image: live.bytes)
print("confirm(live image): \(confirmed) in \(ms(now() - t)) ms")
if !confirmed { failures += 1; print("FAIL confirm of the live image answered false") }
t = now()
let wrong = writer.confirm(image: other.bytes)
print("confirm(other image): \(wrong) in \(ms(now() - t)) ms")
if wrong { failures += 1; print("FAIL confirm of the other image answered true") }
do {
    let digest = try datapath.imageDigest(datapath.readConfig().activeGeneration)
    if digest != live.header.digest { failures += 1; print("FAIL confirm did not record the live image's digest") }
} catch {
    fail("\(error)")
}
load("load of the live image", live, name: "the live image", expect: .unchanged)
load("load of the other image (only differing records)", other, name: "the other image", expect: .delta)

// For comparison: `balancer load`'s fresh fill of the same image (a writer of one load, no headroom).
t = now()
do {
    let r = try datapath.load(imageBytes: live.bytes, node: nil, hostMode: .pod)
    let phases = r.phases.map { "\($0.0) \(ms($0.1))" }.joined(separator: ", ")
    print("Datapath.load (fresh fill, as `balancer load`): \(ms(now() - t)) ms [\(phases)]")
} catch {
    fail("Datapath.load: \(error)")
}
verifyLive("Datapath.load", live, name: "the image loaded")
// The writer sees that another process flipped: its next write fills fresh.
load("load after another process's load (fresh fill)", other, name: "the other image", expect: .fresh)

if failures > 0 {
    print("\(failures) failure\(failures == 1 ? "" : "s")")
    exit(1)
}
print(check ? "ok: every step left the live tables equal to the image they should hold" : "done")
