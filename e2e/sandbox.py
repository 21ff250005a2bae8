"""The kernel sandbox (sandbox.sh) as the Python drivers and clients it starts see it.

sandbox.sh makes the sandbox and exports its names; a driver (differential.py, bench/fault/*.py)
imports this module to run processes in it, and a client (client.py, polclient.py,
bench/fault/client.py) to read the servers' answers and report its check. The rules are
e2e/README.md's, kept by sandbox.sh: this module only runs processes inside what it made.

  B, CG, NSC, NSS, WORK, PY   the private bpffs (pin dir), the test cgroup, the client and server
                              network namespaces, the run's directory, the python3 of the run
  in_sandbox(ns, argv)        argv in the test cgroup and network namespace ns
  spawn(ns, argv)             the same in the background, its pid recorded for sb_cleanup
  report(line)                a result line (stdout and $SB_WORK/results, which sb_finish counts)
  ip_batch(ns, lines)         `ip -n ns -batch -` of lines
  record_programs()           program ids on the test cgroup join sandbox.sh's leftovers check
  answer(sock)                the "ADDR:PORT" line server.py sends on a TCP connection
  connect_answer(...)         one TCP connect and that answer, or a Fail
  Fail, reported(name)        a client's check: its failure, and the block that prints it
"""
import contextlib
import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
B = os.environ.get("SB_B", "")
CG = os.environ.get("SB_CG", "")
NSC = os.environ.get("SB_NSC", "")
NSS = os.environ.get("SB_NSS", "")
WORK = os.environ.get("SB_WORK", "")
PY = os.environ.get("SB_PY", sys.executable)

# sandbox.sh's SB_JOIN: into the cgroup first, then the network namespace by nsenter (which keeps
# the mount namespace, where the run's bpffs is).
JOIN = 'echo $$ >"$1/cgroup.procs" && ns=$2 && shift 2 && exec nsenter --net="/run/netns/$ns" -- "$@"'


def in_sandbox(ns, argv):
    """The command line that runs argv in the test cgroup and the network namespace ns."""
    return ["sh", "-c", JOIN, "sh", CG, ns, *argv]


def spawn(ns, argv, **popen):
    """argv in the test cgroup and namespace ns, in the background; its pid is recorded in
    $SB_WORK/pids, so sandbox.sh's cleanup stops it whatever happens to the caller."""
    proc = subprocess.Popen(in_sandbox(ns, argv), stdin=subprocess.DEVNULL, **popen)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    return proc


_results = None


def report(line):
    """One result line, `ok NAME ...`, `FAIL NAME: why` or `skip NAME: why`."""
    global _results
    if _results is None:
        _results = open(os.path.join(WORK, "results"), "a")
    print(line, flush=True)
    _results.write(line + "\n")
    _results.flush()


def ip_batch(ns, lines, force=False):
    """`ip -n ns [-force] -batch -` of lines; None, or ip's complaint."""
    args = ["ip", "-n", ns] + (["-force"] if force else []) + ["-batch", "-"]
    r = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr or r.stdout).strip()


def record_programs():
    """The ids of the programs attached to the test cgroup join those sb_leftovers checks (a
    driver that attaches by itself)."""
    out = subprocess.run(["bpftool", "-j", "cgroup", "show", CG], stdout=subprocess.PIPE, text=True).stdout.strip()
    ids = {p["id"] for p in json.loads(out)} if out else set()
    path = os.path.join(WORK, "prog_ids")
    if os.path.exists(path):
        with open(path) as f:
            ids |= {int(x) for x in f.read().split()}
    with open(path, "w") as f:
        f.write("".join(f"{i}\n" for i in sorted(ids)))


def answer(sock):
    """What server.py sends on an accepted TCP connection: the "ADDR:PORT" it was reached at
    (read up to the newline or the end; the caller has connected sock)."""
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            break
        reply += chunk
    return reply.decode().strip()


class Fail(Exception):
    """A client check failed; the message says why."""


@contextlib.contextmanager
def reported(name):
    """The body of a client's check NAME: a Fail, or any other exception (a surprise is a failed
    check, not a crash), ends it with the line `FAIL NAME: why`; the body prints its `ok` line."""
    try:
        yield
    except Fail as e:
        print(f"FAIL {name}: {e}")
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def connect_answer(family, dst, i, timeout):
    """Connect #I (from 0) of a check: a new TCP socket of FAMILY connects to DST and reads
    server.py's answer; a Fail `connect #N to ADDR:PORT: error` when it cannot."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(dst)
        return answer(s)
    except OSError as e:
        raise Fail(f"connect #{i + 1} to {dst[0]}:{dst[1]}: {e}")
    finally:
        s.close()
