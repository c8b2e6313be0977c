#!/usr/bin/env python3
"""The WAN targets of issue 10, measured from the player side with tools/wanlab, reported as JSON.

Usage: bench/wan_targets.py [--short] [--seeds N] [--out FILE.json] [--keep DIR] [--only NAME]

Scenarios (25 peers, one-way delay 10-75 ms per host, 0.5 % loss per link, source uplink 1500
kbit/s, stream 500 kbit/s, 60 s, no --upload-limit anywhere), each run with seeds 1..N (default 3):
  a_default   peer uplinks 600-2000 kbit/s, default buffer: continuity mean >= 0.995, min >= 0.98,
              lag_s.p95 <= 4.0, startup_s.p95 <= 3.0, source_upload_ratio <= 1.5
  b_buffer1   the same with --buffer 1: continuity mean >= 0.99, lag_s.p95 <= 2.0
  c_ri12      the same links at resource index 1.2: continuity mean >= 0.99
Every run must also be byte-identical on every player and have every peer play.
--short (CI): one short run (8 peers, 25 s, seed 1) of scenario a's links; the run and its
self-checks (identical, every peer played) must pass, the goals are printed but not enforced.
Exit status: non-zero if a run failed or a self-check failed, or (full mode) a goal was missed.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from swarm_targets import lookup, write_doc  # the same report lookup and JSON output

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WANLAB = os.path.join(ROOT, "tools", "wanlab")
LINKS = ["--delay", "10:75", "--loss", "0.5", "--uplink", "600:2000", "--source-uplink", "1500", "--rate", "500"]
SCENARIOS = [
    {"name": "a_default", "args": ["--peers", "25", *LINKS, "--duration", "60"],
     "goals": [("continuity.mean", ">=", 0.995), ("continuity.min", ">=", 0.98), ("lag_s.p95", "<=", 4.0),
               ("startup_s.p95", "<=", 3.0), ("source_upload_ratio", "<=", 1.5)]},
    {"name": "b_buffer1", "args": ["--peers", "25", *LINKS, "--duration", "60", "--buffer", "1"],
     "goals": [("continuity.mean", ">=", 0.99), ("lag_s.p95", "<=", 2.0)]},
    {"name": "c_ri12", "args": ["--peers", "25", *LINKS, "--duration", "60", "--resource-index", "1.2"],
     "goals": [("continuity.mean", ">=", 0.99)]},
]
SHORT = {"name": "short", "args": ["--peers", "8", *LINKS, "--duration", "25", "--join-window", "5"],
         "goals": SCENARIOS[0]["goals"]}


def evaluate(doc, goals):
    out = []
    for metric, op, goal in goals:
        value = lookup(doc, metric)
        met = value is not None and (value >= goal if op == ">=" else value <= goal)
        out.append({"metric": metric, "value": value, "op": op, "goal": goal, "met": met})
    return out


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    short = "--short" in argv
    seeds = int(argv[argv.index("--seeds") + 1]) if "--seeds" in argv else 3
    out_path = argv[argv.index("--out") + 1] if "--out" in argv else None
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    keep = argv[argv.index("--keep") + 1] if "--keep" in argv else tempfile.mkdtemp(prefix="wan-targets-")
    os.makedirs(keep, exist_ok=True)
    runs = [(SHORT, 1)] if short else [(sc, s) for sc in SCENARIOS for s in range(1, seeds + 1)
                                        if only is None or sc["name"] == only]
    results = []
    failed = False
    for sc, seed in runs:
        name = f"{sc['name']}_seed{seed}"
        report = os.path.join(keep, name + ".json")
        cmd = [WANLAB, *sc["args"], "--seed", str(seed), "--quiet", "--report", report,
               "--out", os.path.join(keep, name)]
        started = time.monotonic()
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - started
        if run.returncode != 0 or not os.path.exists(report):
            print(f"FAIL {name}: wanlab exited {run.returncode}: {run.stderr.strip()[-2000:]}", file=sys.stderr)
            results.append({"name": name, "command": cmd, "error": run.stderr.strip()[-2000:]})
            failed = True
            continue
        with open(report) as f:
            doc = json.load(f)
        self_checks = {"identical": doc["identical"], "every_peer_played": doc["never_played"] == 0}
        checks = evaluate(doc, sc["goals"])
        met = all(c["met"] for c in checks)
        ok = all(self_checks.values())
        failed = failed or not ok
        results.append({"name": name, "scenario": sc["name"], "seed": seed, "command": cmd, "wall_s": round(wall, 1),
                        "self_checks": self_checks, "met": met, "checks": checks,
                        "summary": {k: doc[k] for k in ("continuity", "startup_s", "lag_s", "source_upload_ratio",
                                                        "source_tcp_retransmitted_share", "never_played",
                                                        "identical")}})
        line = ", ".join(f"{c['metric']} {c['value'] if c['value'] is None else round(c['value'], 4)} "
                         f"{c['op']} {c['goal']}" for c in checks)
        tag = "FAIL" if not ok else ("ok  " if met else "MISS")
        print(f"{tag} {name:<16} {line}{'' if ok else '  self-checks: ' + json.dumps(self_checks)}")
    all_met = all(r.get("met", False) for r in results)
    doc = {"benchmark": "wan_targets", "short": short, "runs": results, "all_met": all_met}
    write_doc(doc, out_path)
    if failed:
        return 1
    return 0 if short or all_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
