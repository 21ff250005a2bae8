#!/usr/bin/env python3
"""Writes one generation of the end-to-end test image as a `bpftool batch` file.

Usage: image.py GEN BPFFS > batch.txt

Every record is packed byte-exact per bpf/include/balancer_abi.h (addresses 16 bytes in network
order, IPv4 as ::ffff:a.b.c.d; `_be` ports network order; every other integer little-endian), and
each packed size is checked against the header's BL_*_SIZE defines, so a drift of the ABI fails
here instead of producing a silently wrong image.

The batch creates the generation's eight inner maps ($BPFFS/inner_<table>_<gen>: HASH,
preallocated, ABI key/value sizes), fills them, and inserts each at index GEN of its outer
map ($BPFFS/maps/bl_<table>). It does not touch bl_config: run.sh flips generations itself.
"""
import ipaddress
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ABI = os.path.join(HERE, "..", "..", "include", "balancer_abi.h")

# --- constants of balancer_abi.h -------------------------------------------------------------------
TCP, UDP = 6, 17
ORIGIN_SERVICE = 3
KIND_CLUSTER_IP = 1
ACTION_TRANSLATE, ACTION_REJECT = 1, 2
RULE_LOCAL_ONLY = 1 << 0
VIP_REJECT_UNKNOWN_PORT = 1 << 0
NODE_FROM_OBJECT = 1 << 0
SCOPE_CLUSTER = 0
MAX_RULES = 3
NODE_ID = 7  # bl_config.node_id written by run.sh


def abi_sizes():
    sizes = {}
    text = open(ABI).read()
    for name, expr in re.findall(r"#define (BL_\w+_SIZE) (.+)", text):
        expr = expr.replace("BL_MAX_RULES", str(MAX_RULES)).replace("BL_RULE_SIZE", "24")
        sizes[name] = eval(expr, {})  # simple integer arithmetic of the header
    m = re.search(r"#define BL_MAX_RULES (\d+)", text)
    assert m and int(m.group(1)) == MAX_RULES, "BL_MAX_RULES changed"
    return sizes


SIZES = abi_sizes()


def sized(name, data):
    assert len(data) == SIZES[name], f"{name}: packed {len(data)} bytes, ABI says {SIZES[name]}"
    return data


def addr16(text):
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return b"\0" * 10 + b"\xff\xff" + a.packed
    return a.packed


def port_be(p):
    return struct.pack(">H", p)


# --- records ---------------------------------------------------------------------------------------
def frontend_key(addr, port, proto):
    return sized("BL_FRONTEND_KEY_SIZE", addr16(addr) + port_be(port) + struct.pack("<BB", proto, 0))


def rule(group, owner, action, flags=0, origin=ORIGIN_SERVICE, kind=KIND_CLUSTER_IP, affinity_timeout=0,
         rate_limit=0, node_port=0):
    return sized("BL_RULE_SIZE", struct.pack("<IIIIBBBBH", group, owner, affinity_timeout, rate_limit, origin, kind,
                                             action, 0, flags) + port_be(node_port))


def frontend_value(frontend_id, rules):
    assert 0 < len(rules) <= MAX_RULES
    body = b"".join(rules) + b"\0" * (SIZES["BL_RULE_SIZE"] * (MAX_RULES - len(rules)))
    return sized("BL_FRONTEND_VALUE_SIZE", struct.pack("<IB3x", frontend_id, len(rules)) + body)


def addr_key(addr):
    return sized("BL_ADDR_KEY_SIZE", addr16(addr))


def vip_value(service_id, flags):
    return sized("BL_VIP_VALUE_SIZE", struct.pack("<II", service_id, flags))


def id_key(i):
    return sized("BL_ID_KEY_SIZE", struct.pack("<I", i))


def node_value(zone_id, flags, addr4, addr6="::"):
    return sized("BL_NODE_VALUE_SIZE", struct.pack("<II", zone_id, flags) + ipaddress.IPv4Address(addr4).packed +
                 ipaddress.IPv6Address(addr6).packed)


def set_key(group, scope_id, scope):
    return sized("BL_SET_KEY_SIZE", struct.pack("<IIB3x", group, scope_id, scope))


def set_value(count, flags=0):
    return sized("BL_SET_VALUE_SIZE", struct.pack("<II", count, flags))


def slot_key(group, scope_id, scope, index):
    return sized("BL_SLOT_KEY_SIZE", struct.pack("<IIB3xI", group, scope_id, scope, index))


def slot_value(backend_id):
    return sized("BL_SLOT_VALUE_SIZE", struct.pack("<I", backend_id))


def member_key(group, scope_id, scope, backend_id):
    return sized("BL_MEMBER_KEY_SIZE", struct.pack("<IIB3xI", group, scope_id, scope, backend_id))


def member_value(index):
    return sized("BL_MEMBER_VALUE_SIZE", struct.pack("<I", index))


def backend_value(addr, port, proto, node_id):
    return sized("BL_BACKEND_VALUE_SIZE", addr16(addr) + port_be(port) + struct.pack("<BBI", proto, 0, node_id))


# --- the scenario ----------------------------------------------------------------------------------
# Frontend ids, service ids and groups; run.sh refers to the frontend ids for the counters.
FE_WEB, FE_DNS, FE_REJECT, FE_LOCAL, FE_DNS2 = 1, 2, 3, 4, 5
SVC_WEB, SVC_REJECT, SVC_LOCAL = 10, 11, 12
G_WEB, G_DNS, G_REJECT, G_LOCAL, G_DNS2 = 100, 101, 102, 103, 104
BACKENDS = {  # id -> address, port, proto
    1: ("10.99.0.2", 8080, TCP),
    2: ("10.99.0.3", 8080, TCP),
    3: ("10.99.0.2", 5353, UDP),
    4: ("10.99.0.3", 5353, UDP),
}


def image(gen):
    """table name -> list of (key bytes, value bytes)."""
    web = [1, 2] if gen == 0 else [2]  # generation 1: only 10.99.0.3:8080
    groups = {  # cluster sets: group -> backend ids in slot order
        G_WEB: web,
        G_DNS: [3],
        G_LOCAL: [1],  # a cluster set exists, but the LOCAL_ONLY rule must not use it
        G_DNS2: [3, 4],
    }
    t = {name: [] for name in ("frontends", "vips", "node_addrs", "nodes", "sets", "slots", "members", "backends")}
    t["frontends"] += [
        (frontend_key("10.96.0.10", 80, TCP), frontend_value(FE_WEB, [rule(G_WEB, SVC_WEB, ACTION_TRANSLATE)])),
        (frontend_key("10.96.0.10", 53, UDP), frontend_value(FE_DNS, [rule(G_DNS, SVC_WEB, ACTION_TRANSLATE)])),
        (frontend_key("10.96.0.10", 54, UDP), frontend_value(FE_DNS2, [rule(G_DNS2, SVC_WEB, ACTION_TRANSLATE)])),
        (frontend_key("10.96.0.20", 80, TCP), frontend_value(FE_REJECT, [rule(G_REJECT, SVC_REJECT, ACTION_REJECT)])),
        (frontend_key("10.96.0.30", 80, TCP),
         frontend_value(FE_LOCAL, [rule(G_LOCAL, SVC_LOCAL, ACTION_TRANSLATE, flags=RULE_LOCAL_ONLY)])),
    ]
    t["vips"] += [
        (addr_key("10.96.0.10"), vip_value(SVC_WEB, VIP_REJECT_UNKNOWN_PORT)),
        (addr_key("10.96.0.20"), vip_value(SVC_REJECT, VIP_REJECT_UNKNOWN_PORT)),
        (addr_key("10.96.0.30"), vip_value(SVC_LOCAL, VIP_REJECT_UNKNOWN_PORT)),
    ]
    t["nodes"] += [(id_key(NODE_ID), node_value(0, NODE_FROM_OBJECT, "10.99.0.2"))]
    for group, ids in groups.items():
        t["sets"].append((set_key(group, 0, SCOPE_CLUSTER), set_value(len(ids))))
        for index, bid in enumerate(ids):
            t["slots"].append((slot_key(group, 0, SCOPE_CLUSTER, index), slot_value(bid)))
            t["members"].append((member_key(group, 0, SCOPE_CLUSTER, bid), member_value(index)))
    for bid, (addr, port, proto) in BACKENDS.items():
        t["backends"].append((id_key(bid), backend_value(addr, port, proto, NODE_ID)))
    return t


# key/value size macro of each table, as bl_table_key_size()/bl_table_value_size()
TABLE_SIZES = {
    "frontends": ("BL_FRONTEND_KEY_SIZE", "BL_FRONTEND_VALUE_SIZE"),
    "vips": ("BL_ADDR_KEY_SIZE", "BL_VIP_VALUE_SIZE"),
    "node_addrs": ("BL_ADDR_KEY_SIZE", "BL_NODE_ADDR_VALUE_SIZE"),
    "nodes": ("BL_ID_KEY_SIZE", "BL_NODE_VALUE_SIZE"),
    "sets": ("BL_SET_KEY_SIZE", "BL_SET_VALUE_SIZE"),
    "slots": ("BL_SLOT_KEY_SIZE", "BL_SLOT_VALUE_SIZE"),
    "members": ("BL_MEMBER_KEY_SIZE", "BL_MEMBER_VALUE_SIZE"),
    "backends": ("BL_ID_KEY_SIZE", "BL_BACKEND_VALUE_SIZE"),
}


def hexbytes(b):
    return "hex " + " ".join(f"{x:02x}" for x in b)


def main():
    gen, bpffs = int(sys.argv[1]), sys.argv[2]
    assert gen in (0, 1)
    idx = hexbytes(struct.pack("<I", gen))
    for name, records in image(gen).items():
        ks, vs = (SIZES[m] for m in TABLE_SIZES[name])
        inner = f"{bpffs}/inner_{name}_{gen}"
        # max_entries is not compared for hash inner maps: sized to the image, not BL_MAX_*.
        # Preallocated (flags 0), as the loader creates them: the template's flags must match.
        print(f"map create {inner} type hash key {ks} value {vs} entries 64 name bl_{name[:8]}_{gen} flags 0")
        for k, v in records:
            print(f"map update pinned {inner} key {hexbytes(k)} value {hexbytes(v)} noexist")
        print(f"map update pinned {bpffs}/maps/bl_{name} key {idx} value pinned {inner}")


if __name__ == "__main__":
    main()
