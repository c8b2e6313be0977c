#!/usr/bin/env python3
"""Prints a table of Google Benchmark JSON files and fails if any benchmark reported an error or missed its goal.

Usage: tools/bench_summary.py [--short] FILE.json [...]
A benchmark reports an error (SkipWithError) when its own sanity check on the results fails: always
fatal, as is a file that does not parse or holds no benchmark. A benchmark with a goal reports the
counter goal_met (1 met, 0 missed; with repetitions, the median's): a miss is printed as MISS and
fails the run, except with --short (CI: short runs are noisy, they check that every benchmark runs).
"""
import json
import sys


def fmt_rate(v, unit):
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.2f} {prefix}{unit}"
    return f"{v:.2f} {unit}"


def main(args):
    short = "--short" in args
    paths = [a for a in args if a != "--short"]
    failed = False
    missed = False
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
            "aggregate_name", "aggregate_unit", "bytes_per_second", "items_per_second", "error_occurred",
            "error_message", "label", "goal_met"}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"{path}: unreadable benchmark output: {e}", file=sys.stderr)
            failed = True
            continue
        if not data.get("benchmarks"):
            print(f"{path}: no benchmark ran", file=sys.stderr)
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
            verdict = "     "
            if "goal_met" in b:
                met = b["goal_met"] >= 0.5
                verdict = "ok   " if met else "MISS "
                missed = missed or not met
            print(f"{verdict}{name:<48} " + "  ".join(parts))
    if missed and not short:
        print("bench: a benchmark missed its goal (MISS above)", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
