#!/usr/bin/env python3
"""Long runs of the real binary, watched through /api/stats.

  soak  : N cameras on the looping demo at full speed (hours of video in
          minutes): RSS and open file descriptors must stay flat.
  live  : N cameras on the looping demo at real time (25 fps each): no
          camera's capture-to-detection latency may grow; drops are counted.

Prints one line per sample and a verdict comparing the first and the last
quarter of the run; writes the samples as CSV next to the verdict.

  scripts/soak.py soak --cameras 2 --minutes 15 --out soak.csv
  scripts/soak.py live --cameras 4 --minutes 5 --out live.csv
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["soak", "live"])
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--skip", type=int, default=0, help="detection_skip_frames")
    ap.add_argument("--out", default="")
    ap.add_argument("--binary", default="target/release/faceflow")
    a = ap.parse_args()

    port = 18000 + os.getpid() % 1000
    tmp = tempfile.mkdtemp(prefix="faceflow-soak-")
    realtime = "true" if a.mode == "live" else "false"
    cfg = f'[outbox]\ndir = "{tmp}/out"\n[monitor]\nbind = "127.0.0.1:{port}"\n'
    for i in range(a.cameras):
        cfg += (f'[[cameras]]\nname = "cam{i}"\nurl = "models/demo/demo.h264"\nrealtime = {realtime}\n'
                f'loop = true\ndetection_skip_frames = {a.skip}\n')
    path = os.path.join(tmp, "faceflow.toml")
    open(path, "w").write(cfg)
    proc = subprocess.Popen([a.binary, "run", "--config", path], stderr=subprocess.DEVNULL)
    rows = []
    t0 = time.time()
    try:
        time.sleep(3)
        while time.time() - t0 < a.minutes * 60:
            try:
                s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5))
            except OSError as e:
                print(f"stats: {e}", file=sys.stderr)
                time.sleep(a.interval)
                continue
            cams = s["cameras"]
            row = {
                "t_s": round(time.time() - t0, 1),
                "frames": sum(c["frames_decoded"] for c in cams),
                "detected": sum(c["frames_detected"] for c in cams),
                "dropped": sum(sum(c["dropped"].values()) for c in cams),
                "events": sum(c["events"] for c in cams),
                "rss_mb": round(s["process"]["rss_mb"], 1),
                "open_fds": s["process"]["open_fds"],
            }
            for c in cams:
                row[f'{c["name"]}_latency_ms'] = round(c["capture_to_detect"]["last_ms"], 1)
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            time.sleep(a.interval)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if a.out:
        with open(a.out, "w") as f:
            f.write(",".join(rows[0].keys()) + "\n")
            for r in rows:
                f.write(",".join(str(v) for v in r.values()) + "\n")
    q = max(1, len(rows) // 4)
    first, last = rows[:q], rows[-q:]
    video_h = rows[-1]["frames"] / 25 / 3600
    print(f"\n{len(rows)} samples over {rows[-1]['t_s']:.0f} s; {rows[-1]['frames']} frames decoded "
          f"({video_h:.2f} h of 25 fps video), {rows[-1]['detected']} detected, {rows[-1]['dropped']} dropped, "
          f"{rows[-1]['events']} events")
    ok = True
    # fds: +2 allowed, because a sample can catch an outbox temp file or the
    # stats request's own connection open for an instant; a leak grows
    # without bound and still fails.
    for key, tol in (("rss_mb", 8.0), ("open_fds", 2)):
        f, l = max(r[key] for r in first), max(r[key] for r in last)
        flat = l <= f + tol
        ok &= flat
        print(f"{key}: first quarter max {f}, last quarter max {l}: {'flat' if flat else 'GREW'}")
    if a.mode == "live":
        for k in [k for k in rows[0] if k.endswith("_latency_ms")]:
            f, l = statistics.median(r[k] for r in first), statistics.median(r[k] for r in last)
            flat = l <= max(2 * f, f + 100)
            ok &= flat
            print(f"{k}: first quarter median {f}, last quarter median {l}: {'flat' if flat else 'GREW'}")
    print("verdict:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
