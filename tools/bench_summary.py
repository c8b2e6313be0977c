#!/usr/bin/env python3
"""Prints a table of Google Benchmark JSON files and fails if any benchmark reported an error.

Usage: tools/bench_summary.py FILE.json [...]
A benchmark reports an error (SkipWithError) when its own sanity check on the results fails.
"""
import json
import sys


def fmt_rate(v, unit):
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.2f} {prefix}{unit}"
    return f"{v:.2f} {unit}"


def main(paths):
    failed = False
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
            "aggregate_name", "aggregate_unit", "bytes_per_second", "items_per_second", "error_occurred",
            "error_message", "label"}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"{path}: unreadable benchmark output: {e}", file=sys.stderr)
            failed = True
            continue
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            name = b["name"]
            if b.get("error_occurred"):
                print(f"FAIL {name}: {b.get('error_message')}")
                failed = True
                continue
            parts = [f"{b['real_time']:.3g} {b['time_unit']}"]
            if "bytes_per_second" in b:
                parts.append(fmt_rate(b["bytes_per_second"], "B/s"))
            if "items_per_second" in b:
                parts.append(fmt_rate(b["items_per_second"], "items/s"))
            for k, v in b.items():
                if k not in skip and isinstance(v, (int, float)):
                    parts.append(f"{k}={v:.4g}")
            print(f"{name:<48} " + "  ".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
