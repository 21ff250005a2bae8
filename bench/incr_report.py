"""Figures of bench/incremental.py: percentiles, PASS/MISS lines, the JSON it writes."""
import json
import math


def percentile(xs, p):
    """The nearest-rank percentile (p99 of 30 samples is the largest); nan when empty."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))
    return xs[k]


def stats(xs):
    xs = [x for x in xs if x is not None]
    return {"n": len(xs), "p50": percentile(xs, 50), "p99": percentile(xs, 99), "max": max(xs) if xs else float("nan")}


def ms(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def verdict(ok):
    return "PASS" if ok else "MISS"


class Report:
    """PASS/MISS lines as they are printed, and everything measured, for bench/out/incremental.json."""

    def __init__(self):
        self.targets = []
        self.data = {}

    def target(self, name, ok, text):
        """One target line: `PASS|MISS  name: text`; ok None is a MISS whose figure is absent."""
        line = f"{verdict(bool(ok))}  {name}: {text}"
        self.targets.append({"target": name, "result": verdict(bool(ok)), "text": text})
        print(line, flush=True)

    def write(self, path):
        def clean(v):
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        with open(path, "w") as f:
            json.dump(clean({"targets": self.targets, **self.data}), f, indent=1, sort_keys=True)
            f.write("\n")
