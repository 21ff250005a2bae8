@testable import Loader
import Testing

/// The verdict of `version --check` from its items, and the kernel release read as a version.
@Suite struct KernelCheckTests {
    @Test func releasesReadAsMajorAndMinor() {
        #expect(KernelCheck.majorMinor("6.1.0-18-amd64")! == (6, 1))
        #expect(KernelCheck.majorMinor("5.15.0-1051-azure")! == (5, 15))
        #expect(KernelCheck.majorMinor("6.18.44-fc-v1252")! == (6, 18))
        #expect(KernelCheck.majorMinor("linux") == nil)
        #expect(KernelCheck.kernelVersionItem("5.17.0").outcome == .limited, "older than 5.18: the load decides")
        #expect(KernelCheck.kernelVersionItem("5.18.0").outcome == .ok)
        #expect(KernelCheck.kernelVersionItem("6.1").outcome == .ok)
    }

    /// One missing item makes the host not ready whatever else is unknown; unknown beats
    /// limited, since an unasked item could still be missing.
    @Test func theVerdictIsTheWorstItem() {
        func check(_ outcomes: [KernelCheck.Outcome]) -> KernelCheck.Verdict {
            KernelCheck(kernel: "6.1", items: outcomes.enumerated().map { KernelCheck.Item(name: "item \($0.offset)", outcome: $0.element, detail: "") }).verdict
        }
        #expect(check([.ok, .ok]) == .ready)
        #expect(check([.ok, .limited]) == .readyWithLimits)
        #expect(check([.limited, .unknown]) == .unknown)
        #expect(check([.unknown, .missing, .limited]) == .notReady)
    }
}
