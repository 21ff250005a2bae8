"""The watcher under test, seen from bench/incremental.py: its log lines, each stamped with
time.monotonic() when read (a reader thread on its standard error, so a line is seen as soon as it
is written), what each line says, and the process's CPU time and memory from /proc.
"""
import os
import re
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
NUM = r"([0-9]+(?:\.[0-9]+)?)"
TO_LIVE = re.compile(r"event_to_live_ms=" + NUM)
TO_DROP = re.compile(r"event_to_drop_ms=" + NUM)
REASON = re.compile(r"reason=(.*?)(?= \S+=| \[|$)")
PHASES = re.compile(r"phases_ms=(.*?)(?= \S+=| \[|$)")
CHANGES = re.compile(r"changes=([0-9]+)")

# What a line says, by its message (the end of the line).
MESSAGES = {
    "records delivered": "records",      # an incremental sync, written as a delta
    "image delivered": "image",          # a full compile, delivered as a whole image
    "unchanged": "unchanged",            # a full compile that gave the live image again
    "event dropped": "dropped",          # an event that changes nothing the compiler reads
    "full compile": "full",              # the incremental compiler handed over (reason=...)
    "incremental state verified against a full compile": "verified",
    "the live records differ from a full compile: loading the full image": "mismatch",
    "listed": "listed",                  # a kind's list, stored (debug)
}
HANDLED = {"records", "image", "unchanged", "dropped", "failed"}   # the watcher is done with a change
WORK = {"records", "image", "unchanged", "full", "verified", "mismatch", "failed"}


SOURCE = re.compile(r" \[[\w.]+\] (.*)$")


def classify(text):
    """The kind of a log line (swift-log's `TIME LEVEL LABEL: METADATA [SOURCE] MESSAGE`), or None."""
    m = SOURCE.search(text.rstrip())
    msg = m.group(1) if m else text.rstrip()
    if msg.startswith("event dropped") or TO_DROP.search(text):
        return "dropped"
    if msg in MESSAGES:
        return MESSAGES[msg]
    if msg.startswith(("compile failed", "delivery failed")):
        return "failed"
    return None


class Line:
    __slots__ = ("t", "text", "what", "i")

    def __init__(self, t, text, i):
        self.t, self.text, self.what, self.i = t, text, classify(text), i

    def number(self, rx):
        m = rx.search(self.text)
        return float(m.group(1)) if m else None

    def field(self, rx):
        m = rx.search(self.text)
        return m.group(1).strip() if m else None


class Watcher:
    def __init__(self, cmd, log_path):
        self.log = open(log_path, "w", buffering=1)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for text in self.proc.stdout:
            t = time.monotonic()
            self.log.write(text)
            with self.cond:
                line = Line(t, text, len(self.lines))
                self.lines.append(line)
                self.cond.notify_all()
        self.log.flush()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def since(self, mark):
        with self.cond:
            return self.lines[mark:]

    def wait(self, mark, kinds, timeout):
        """The first line from `mark` on whose kind is in `kinds`, or None after timeout seconds."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[mark:]:
                    if line.what in kinds:
                        return line
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))

    def idle(self, mark, quiet=2.0, limit=300, busy=0.1):
        """Waits until the watcher has been idle for `quiet` seconds: no line of WORK (nor a drop) and at most
        `busy` of a core used (a compile in progress logs nothing until it ends); at most `limit`
        seconds. Returns the lines from mark on."""
        start = time.monotonic()
        samples = [(start, self.cpu())]
        while True:
            time.sleep(0.05)
            now, cpu = time.monotonic(), self.cpu()
            samples.append((now, cpu))
            with self.cond:
                last = max((l.t for l in self.lines[mark:] if l.what in WORK or l.what == "dropped"), default=start)
            old = [s for s in samples if s[0] <= now - quiet]
            if old and now - max(last, start) >= quiet and cpu - old[-1][1] <= busy * quiet:
                break
            if now - start >= limit or self.proc.poll() is not None:
                break
        return self.since(mark)

    def cpu(self):
        """CPU seconds (user + system) the watcher has used."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def memory(self):
        """VmHWM and VmRSS in MB (10^6 bytes)."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for l in f:
                k, _, v = l.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0]) * 1024 / 1e6
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
