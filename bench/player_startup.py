#!/usr/bin/env python3
"""Player start-up: how soon a media player that connects to a peer mid-stream decodes its first frame.

Usage: bench/player_startup.py [--short] [--joins N] [--burst S] [--bin DIR] [--out FILE.json]

For each container (MPEG-TS with H.264/AAC, Ogg Vorbis, MP3) a tracker, a source reading a generated
30 s file (looped, at real time by its own clock) and one peer run on 127.0.0.1. Once the peer has
played 9 s, each player joins N times (default 10), one after the other, over HTTP:
  ffmpeg   ffmpeg -i URL -frames:v 1 (audio: -frames:a 1) -f null -
  mpv      mpv --vo=null --ao=null --frames=1 (audio: --length=0.05)
  gst      gst-launch-1.0 souphttpsrc location=URL ! decodebin ! video/x-raw (audio/x-raw) ! fakesink num-buffers=1
           (uridecodebin and playbin add network buffering of their own: 2 s more on MPEG-TS)
A join's start-up is the time from starting the player to its exit after that first frame (a player
that fails or takes over 20 s counts as 20 s and fails the run). Goal: the median of each player on
each container <= 1.0 s. --burst S is passed to the peer (0: no burst on connect, for comparison).
--short (CI): 2 joins each; the goals are printed but not enforced, the runs must succeed.
Prints JSON (and writes it to --out); exit status non-zero if a run failed or (full mode) a goal was
missed.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_S = 1.0
TIMEOUT_S = 20.0
MEDIA = {
    "mpegts": (["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                "-t", "30", "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "800k", "-c:a", "aac",
                "-f", "mpegts"], "ts", True),
    "ogg": (["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3", "-t", "30", "-c:a", "libvorbis", "-q:a",
             "4", "-f", "ogg"], "ogg", False),
    "mp3": (["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3", "-t", "30", "-c:a", "libmp3lame", "-b:a",
             "128k", "-f", "mp3"], "mp3", False),
}


def player_commands(url, video):
    return {
        "ffmpeg": ["ffmpeg", "-nostdin", "-v", "error", "-i", url] +
                  (["-map", "0:v:0", "-frames:v", "1"] if video else ["-map", "0:a:0", "-frames:a", "1"]) +
                  ["-f", "null", "-"],
        "mpv": ["mpv", "--no-config", "--really-quiet", "--vo=null", "--ao=null"] +
               (["--frames=1"] if video else ["--length=0.05"]) + [url],
        "gst": ["gst-launch-1.0", "-q", "souphttpsrc", "location=" + url, "!", "decodebin", "!",
                "video/x-raw" if video else "audio/x-raw", "!", "fakesink", "num-buffers=1"],
    }


def get_json(port, path="/stats"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def start_line(proc, pattern, what):
    """Reads the program's stdout until its start-up line; returns the regex match."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return m
    raise RuntimeError(f"{what} did not start")


def measure(container, joins, burst, bindir, work):
    args, ext, video = MEDIA[container]
    media = os.path.join(work, "input." + ext)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, media], check=True)
    procs = []
    try:
        tracker = subprocess.Popen([os.path.join(bindir, "pixtream-tracker", "pixtream-tracker"), "-p", "0", "--bind",
                                    "127.0.0.1", "-i", "1", "--log-level", "warn"], stdout=subprocess.PIPE, text=True)
        procs.append(tracker)
        tport = start_line(tracker, r"127\.0\.0\.1:(\d+)", "tracker").group(1)
        url = f"http://127.0.0.1:{tport}"
        source = subprocess.Popen([os.path.join(bindir, "pixtream-source", "pixtream-source"), "-i", "127.0.0.1", "-p",
                                   "0", "-s", "0", "--key", os.path.join(work, container + ".key"), "--loop",
                                   "--channel", container, "--log-level", "warn", url, "file", media],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(source)
        start_line(source, r"players on", "source")
        peer = subprocess.Popen([os.path.join(bindir, "pixtream-peer", "pixtream-peer"), "-i", "127.0.0.1", "-p", "0",
                                 "-s", "0", "--channel", container, "--burst", str(burst), "--log-level", "warn", url],
                                stdout=subprocess.PIPE, text=True)
        procs.append(peer)
        pport = int(start_line(peer, r"players on [^ ]+:(\d+)", "peer").group(1))
        # The peer has played 9 s (its history then covers the burst): polled on its own /stats.
        deadline = time.monotonic() + 60
        while True:
            s = get_json(pport)
            if s.get("chunks_played", 0) > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the peer did not start playing")
            time.sleep(0.2)
        began = time.monotonic()
        while time.monotonic() - began < 9:
            time.sleep(0.2)
        result = {}
        for name, cmd in player_commands(f"http://127.0.0.1:{pport}/", video).items():
            times, failures = [], 0
            for _ in range(joins):
                t0 = time.monotonic()
                try:
                    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT_S)
                    ok = r.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                took = time.monotonic() - t0
                if not ok:
                    failures += 1
                    took = TIMEOUT_S
                times.append(round(took, 3))
            result[name] = {"median_s": round(statistics.median(times), 3), "max_s": max(times), "joins": times,
                            "failures": failures}
        return result
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    short = "--short" in argv
    joins = int(argv[argv.index("--joins") + 1]) if "--joins" in argv else (2 if short else 10)
    burst = float(argv[argv.index("--burst") + 1]) if "--burst" in argv else 5.5
    bindir = argv[argv.index("--bin") + 1] if "--bin" in argv else os.path.join(ROOT, "build", "release", "programs")
    out_path = argv[argv.index("--out") + 1] if "--out" in argv else None
    for tool in ("ffmpeg", "mpv", "gst-launch-1.0"):
        if shutil.which(tool) is None:
            print(f"player_startup: {tool} not found (tools/install-deps installs it)", file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="player-startup-")
    doc = {"benchmark": "player_startup", "joins": joins, "burst_s": burst, "goal_median_s": GOAL_S, "results": {}}
    failed = missed = False
    try:
        for container in MEDIA:
            r = measure(container, joins, burst, bindir, work)
            doc["results"][container] = r
            for name, m in r.items():
                failed = failed or m["failures"] > 0
                m["met"] = m["median_s"] <= GOAL_S
                missed = missed or not m["met"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc["failed"] = failed
    doc["goals_met"] = not missed
    text = json.dumps(doc, indent=2)
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text + "\n")
    for container, r in doc["results"].items():
        print(" ".join(f"{container}/{n} {m['median_s']:.2f}s{'' if m['met'] else ' MISS'}" for n, m in r.items()),
              file=sys.stderr)
    if failed:
        return 1
    return 1 if missed and not short else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
