#!/usr/bin/env python3
"""The swarm targets of the project, measured with tools/swarmsim (in-process mode) and reported as JSON.

Usage: bench/swarm_targets.py SWARMSIM [--short] [--out FILE.json] [--keep DIR]

Each scenario runs one swarm and compares its report with its goals, all of them measured figures
(player-side metrics and what the nodes really uploaded), never the scenario's own command line:
  ri2_100       100 peers at resource index 2: continuity >= 0.995, source_upload_ratio <= 1.5,
                lag_s.p95 <= 1.5 x lag_bound_s
  one_proc_500  500 peers in one process: continuity >= 0.99
  cap90_100     100 peers with the stream at 0.9 x capacity_bps: continuity >= 0.99, and the swarm
                really ran near capacity: the stream the players got >= 0.85 x capacity_bps
                (measured.rate_over_capacity), the uplinks >= 0.85 busy (measured.upload_utilisation),
                and no node uploaded more than 5 % over its cap (measured.*_upload_over_cap)
--short runs shorter swarms (CI): the figures are noisier, the goals the same.

Every run must self-check: swarmsim exits 0, its report parses and holds every figure a goal reads,
the players' outputs were the source's chunks (identical) and chunks were produced and played. A run
that fails that is fatal (exit status 1) in every mode. A missed goal is printed as MISS and reported
("met": false); it makes the exit status 1 in full mode, not with --short.
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
        "goals": [("continuity.mean", ">=", 0.99), ("measured.rate_over_capacity", ">=", 0.85),
                  ("measured.upload_utilisation", ">=", 0.85), ("measured.peer_upload_over_cap.max", "<=", 1.05),
                  ("measured.source_upload_over_cap", "<=", 1.05)],
    },
]


def lookup(report, path):
    value = report
    for part in path.split("."):
        value = value[part]
    return value


class SelfCheckError(Exception):
    pass


def write_doc(doc, out_path):
    """The benchmark's JSON document to out_path, or to stdout without one."""
    text = json.dumps(doc, indent=1)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


def number(report, path):
    """The figure at `path`, or a self-check failure (SelfCheckError) if it is missing or not a number."""
    try:
        value = lookup(report, path)
    except (KeyError, TypeError):
        raise SelfCheckError(f"the report has no {path}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise SelfCheckError(f"{path} is not a number: {value!r}")
    return float(value)


def self_check(report, goals):
    """What every run must show, whatever its figures: raises SelfCheckError."""
    if report.get("identical") is not True:
        raise SelfCheckError("the players' outputs differ from the source's chunks (identical is false)")
    if number(report, "chunks") <= 0:
        raise SelfCheckError("the source produced no chunk")
    if number(report, "continuity.peers") <= 0:
        raise SelfCheckError("no peer was judged (continuity.peers is 0)")
    if number(report, "lag_s.max") <= 0:
        raise SelfCheckError("no chunk was played")
    for metric, _, goal in goals:
        number(report, metric)
        if isinstance(goal, tuple):
            number(report, goal[0])


def evaluate(report, goals):
    # The scenario's configured load (kept in the report for reference; no goal reads it).
    report["rate_over_capacity"] = number(report, "config.rate_bps") / number(report, "capacity_bps")
    out = []
    for metric, op, goal in goals:
        if isinstance(goal, tuple):
            ref, factor = goal
            goal_value = number(report, ref) * factor
            goal_text = f"{factor} x {ref}"
        else:
            goal_value = goal
            goal_text = str(goal)
        value = number(report, metric)
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
        if os.path.exists(report_path):
            os.remove(report_path)  # a stale report must not stand in for this run's
        cmd = [swarmsim, *sc["args"], "--duration", str(duration), "--quiet", "--report", report_path]
        started = time.monotonic()
        try:
            run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 timeout=4 * duration + 120)
            status, stderr = run.returncode, run.stderr.strip()
        except subprocess.TimeoutExpired as e:
            status, stderr = "timeout", f"no report after {e.timeout:.0f} s"
        wall = time.monotonic() - started
        error = None
        report = None
        if status != 0 or not os.path.exists(report_path):
            error = f"swarmsim exited {status}: {stderr}"
        else:
            try:
                with open(report_path) as f:
                    report = json.load(f)
                self_check(report, sc["goals"])
                checks = evaluate(report, sc["goals"])
            except (OSError, json.JSONDecodeError) as e:
                error = f"unreadable report {report_path}: {e}"
            except SelfCheckError as e:
                error = f"self-check failed: {e}"
        if error:
            print(f"FAIL {sc['name']}: {error}", file=sys.stderr)
            entry = {"name": sc["name"], "command": cmd, "wall_s": round(wall, 1), "met": False, "error": error}
            if report is not None:
                entry["report"] = report
            results.append(entry)
            failed = True
            continue
        met = all(c["met"] for c in checks)
        results.append({"name": sc["name"], "command": cmd, "wall_s": round(wall, 1), "met": met,
                        "checks": checks, "report": report})
        line = ", ".join(f"{c['metric']} {c['value']:.4g} {c['op']} {c['goal']:.4g}" for c in checks)
        print(f"{'ok  ' if met else 'MISS'} {sc['name']:<14} {line}")
    all_met = all(r.get("met", False) for r in results)
    doc = {"benchmark": "swarm_targets", "short": short, "scenarios": results, "all_met": all_met,
           "self_checks_passed": not failed}
    write_doc(doc, out_path)
    if failed:
        return 1
    if not all_met and not short:
        print("swarm_targets: a goal was missed (see MISS above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
