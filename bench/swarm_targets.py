#!/usr/bin/env python3
"""The swarm targets of the project, measured with tools/swarmsim (in-process mode) and reported as JSON.

Usage: bench/swarm_targets.py SWARMSIM [--short] [--out FILE.json] [--keep DIR]

Each scenario runs one swarm and compares its report with its goals:
  ri2_100       100 peers at resource index 2: continuity >= 0.995, source_upload_ratio <= 1.5,
                lag_s.p95 <= 1.5 x lag_bound_s
  one_proc_500  500 peers in one process: continuity >= 0.99
  cap90_100     100 peers with the stream at 0.9 x capacity_bps: continuity >= 0.99
--short runs shorter swarms (CI): the figures are noisier, the goals the same.
A target that is missed is reported ("met": false) and printed as MISS; the exit status is non-zero
only when a swarm could not run at all.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

# Stream 500 kbit/s in 0.5 s chunks; caps in bit/s. The buffers are the peers' --buffer: the
# playout lag a deployment would choose for that load (at 0.9 x capacity a chunk needs longer to
# reach every peer: lag_bound_s is larger there).
SCENARIOS = [
    {
        "name": "ri2_100",
        "args": ["--peers", "100", "--rate", "500000", "--source-cap", "1000000", "--resource-index", "2",
                 "--buffer", "2"],
        "duration": (40, 25),
        "goals": [("continuity.mean", ">=", 0.995), ("source_upload_ratio", "<=", 1.5),
                  ("lag_s.p95", "<=", ("lag_bound_s", 1.5))],
    },
    {
        "name": "one_proc_500",
        "args": ["--peers", "500", "--rate", "500000", "--source-cap", "1000000", "--upload-cap", "1000000",
                 "--buffer", "2", "--join-window", "10"],
        "duration": (40, 30),
        "goals": [("continuity.mean", ">=", 0.99)],
    },
    {
        "name": "cap90_100",
        "args": ["--peers", "100", "--rate", "900000", "--source-cap", "1000000", "--upload-cap", "1000000",
                 "--buffer", "4"],
        "duration": (40, 25),
        "goals": [("continuity.mean", ">=", 0.99), ("rate_over_capacity", "<=", 0.9)],
    },
]


def lookup(report, path):
    value = report
    for part in path.split("."):
        value = value[part]
    return value


def evaluate(report, goals):
    report["rate_over_capacity"] = report["config"]["rate_bps"] / report["capacity_bps"]
    out = []
    for metric, op, goal in goals:
        if isinstance(goal, tuple):
            ref, factor = goal
            goal_value = lookup(report, ref) * factor
            goal_text = f"{factor} x {ref}"
        else:
            goal_value = goal
            goal_text = str(goal)
        value = lookup(report, metric)
        met = value >= goal_value if op == ">=" else value <= goal_value
        out.append({"metric": metric, "value": value, "op": op, "goal": goal_value, "goal_is": goal_text,
                    "met": met})
    return out


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    swarmsim = argv[0]
    short = "--short" in argv
    out_path = argv[argv.index("--out") + 1] if "--out" in argv else None
    keep = argv[argv.index("--keep") + 1] if "--keep" in argv else tempfile.mkdtemp(prefix="swarm-targets-")
    os.makedirs(keep, exist_ok=True)
    results = []
    failed = False
    for sc in SCENARIOS:
        duration = sc["duration"][1 if short else 0]
        report_path = os.path.join(keep, sc["name"] + ".json")
        cmd = [swarmsim, *sc["args"], "--duration", str(duration), "--quiet", "--report", report_path]
        started = time.monotonic()
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - started
        if run.returncode != 0 or not os.path.exists(report_path):
            print(f"FAIL {sc['name']}: swarmsim exited {run.returncode}: {run.stderr.strip()}", file=sys.stderr)
            results.append({"name": sc["name"], "command": cmd, "error": run.stderr.strip()})
            failed = True
            continue
        with open(report_path) as f:
            report = json.load(f)
        checks = evaluate(report, sc["goals"])
        met = all(c["met"] for c in checks)
        results.append({"name": sc["name"], "command": cmd, "wall_s": round(wall, 1), "met": met,
                        "checks": checks, "report": report})
        line = ", ".join(f"{c['metric']} {c['value']:.4g} {c['op']} {c['goal']:.4g}" for c in checks)
        print(f"{'ok  ' if met else 'MISS'} {sc['name']:<14} {line}")
    doc = {"benchmark": "swarm_targets", "short": short, "scenarios": results,
           "all_met": all(r.get("met", False) for r in results)}
    text = json.dumps(doc, indent=1)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
