#!/usr/bin/env python3
"""Pins a cgroup bpf_link, as another version's `balancer attach` leaves one (run.sh's upgrade
check): BPF_LINK_CREATE of the program pinned at PROG_PIN on the cgroup CGROUP for the connect4
hook, pinned at LINK_PIN. Raw bpf(2) through ctypes: bpftool cannot pin a cgroup link.

Usage: pinlink.py PROG_PIN CGROUP LINK_PIN
"""
import ctypes
import os
import platform
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_OBJ_PIN, BPF_OBJ_GET, BPF_LINK_CREATE = 6, 7, 28
BPF_CGROUP_INET4_CONNECT = 10
libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    r = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        sys.exit(f"pinlink.py: bpf({cmd}): {os.strerror(e)}")
    return r


class ObjAttr(ctypes.Structure):  # BPF_OBJ_GET / BPF_OBJ_PIN
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32), ("file_flags", ctypes.c_uint32),
                ("pad", ctypes.c_uint8 * 112)]


class LinkCreateAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("pad", ctypes.c_uint8 * 112)]


def main():
    prog_pin, cgroup, link_pin = sys.argv[1:4]
    path = ctypes.create_string_buffer(prog_pin.encode())
    get = ObjAttr(pathname=ctypes.addressof(path))
    prog_fd = bpf(BPF_OBJ_GET, get)
    cg = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    link_fd = bpf(BPF_LINK_CREATE, LinkCreateAttr(prog_fd=prog_fd, target_fd=cg, attach_type=BPF_CGROUP_INET4_CONNECT))
    pin = ctypes.create_string_buffer(link_pin.encode())
    bpf(BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(pin), bpf_fd=link_fd))


if __name__ == "__main__":
    main()
