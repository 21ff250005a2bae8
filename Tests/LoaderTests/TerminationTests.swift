@testable import Loader
import HostSystem
import CBalancerABI
import MapImage
import Testing

/// The loader's side of socket termination: what each mode runs, and the iterators' output read
/// back (the kernel side is e2e/run.sh part i).
@Suite struct TerminationTests {
    @Test func modesNameTheirProtocols() {
        #expect(TerminationMode.udp.protocols == [.udp])
        #expect(TerminationMode.all.protocols == [.udp, .tcp])
        #expect(TerminationMode.none.protocols.isEmpty)
        #expect(TerminationMode(rawValue: "tcp") == nil)
    }

    /// bl_terminated records laid end to end, as the iterator writes them; a torn tail is ignored.
    @Test func iteratorOutput() {
        var a = bl_terminated(), b = bl_terminated()
        a.socket_cookie = 0x0102_0304_0506_0708
        a.proto = 17
        a.result = 0
        a.frontend_id = 5
        b.socket_cookie = 9
        b.proto = 6
        b.result = -95
        b.backend_id = 0xABCD
        let bytes = structBytes(a) + structBytes(b) + [1, 2, 3]
        #expect(MemoryLayout<bl_terminated>.size == 40)
        let records = Datapath.terminatedRecords(bytes)
        #expect(records.count == 2)
        #expect(records.map(\.socket_cookie) == [0x0102_0304_0506_0708, 9])
        #expect(records.map(\.result) == [0, -95])
        #expect(records[0].frontend_id == 5 && records[1].backend_id == 0xABCD)
        #expect(Datapath.terminatedRecords([]).isEmpty)
    }

    /// Without the iterators pinned (attached by an older version, or a kernel without
    /// bpf_sock_destroy) nothing runs, the load is not failed, and the report says why; mode none
    /// does nothing at all.
    @Test func missingIteratorIsANote() throws {
        let datapath = try Rig().datapath()
        let r = datapath.terminateStaleSockets(.all, scope: "/nonexistent-cgroup")
        #expect(r.total == 0 && r.namespaces == 0 && r.failed == 0)
        #expect(r.notes.count == 2)
        #expect(r.notes.first?.contains("UDP sockets not terminated: no iterator pinned at /memory/bpf/links/iter-bl_terminate_udp") == true)
        #expect(r.notes.last?.contains("TCP sockets not terminated") == true)
        #expect(datapath.terminateStaleSockets(.none, scope: "/nonexistent-cgroup").notes.isEmpty)
    }
}

/// A datapath attached by an earlier version lacks the tables added since: opening it says so,
/// naming the table and what to do, instead of a bare "No such file".
@Suite struct OlderDatapathTests {
    @Test func aMissingTableNamesTheVersion() throws {
        let rig = try Rig()
        rig.maps.unpin("\(rig.pinDir)/maps/bl_service_cidrs")
        #expect { try rig.datapath() } throws: { error in
            let text = "\(error)"
            return text.contains("maps/bl_service_cidrs") && text.contains("attached by an older version of balancer")
                && text.contains("service_cidrs table") && text.contains("detach and attach with this version")
        }
    }
}

/// The pod a kubelet cgroup path names (`balancer monitor`'s attribution).
@Suite struct CgroupNamesTests {
    @Test func podUIDFromKubeletPaths() {
        // systemd cgroup driver: underscores in the slice name.
        #expect(CgroupNames.podUID("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b3f2a6e_4c1d_4d8e_9a51_7a2f4c6d1e90.slice/cri-containerd-abc.scope")
                == "0b3f2a6e-4c1d-4d8e-9a51-7a2f4c6d1e90")
        // cgroupfs driver.
        #expect(CgroupNames.podUID("/kubepods/besteffort/pod0B3F2A6E-4C1D-4D8E-9A51-7A2F4C6D1E90/0123456789ab") == "0b3f2a6e-4c1d-4d8e-9a51-7a2f4c6d1e90")
        // Not a pod: no uid, or a "pod" word without one.
        #expect(CgroupNames.podUID("/system.slice/sshd.service") == nil)
        #expect(CgroupNames.podUID("/user.slice/podman-123.scope") == nil)
        #expect(CgroupNames.podUID("/") == nil)
    }
}
