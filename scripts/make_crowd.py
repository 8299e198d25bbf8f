"""Builds the crowd test video: 40 real faces in view at once at 1080p
(`--faces N` for fewer, spread over the same grid, for the bench).

The same face photos and CenterFace cut-outs as the demo (make_demo.py),
placed on a grid of 8 x 5 lanes so that no two people ever cross: each
walks slowly along its own lane (and bobs a little), everyone is in view
at once for most of the video, entries and exits are staggered. Encoded by
ffmpeg/x264 with its defaults (High, B-frames) to MP4, then Annex B;
`truth.json` (the demo's format) records every face box on every frame.
Deterministic: the same inputs give the same frames.
"""
import argparse
import json
import math
import os
import subprocess

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter, ImageOps

import make_demo

W, H, FPS = 1920, 1080, 25
COLS, ROWS = 8, 5
FRAMES = 240


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--faces", type=int, default=COLS * ROWS, help="people (1..40), spread over the grid")
    args = ap.parse_args()
    n = max(1, min(COLS * ROWS, args.faces))
    os.makedirs(args.out, exist_ok=True)
    ort.set_default_logger_severity(3)  # not the model's unused-initializer notes
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    faces = [f for f in make_demo.sprites(sess, args.photos) if f[2] > 0.7]
    faces.sort(key=lambda f: -(f[1][2] - f[1][0]))
    rng = np.random.default_rng(11)
    base = rng.integers(40, 200, size=(H // 24, W // 24, 3)).astype(np.uint8)
    bg = np.asarray(Image.fromarray(base).resize((W, H), Image.BICUBIC).filter(ImageFilter.GaussianBlur(8)))
    bg = bg.astype(np.float32)
    cw, ch = W / COLS, H / ROWS
    people = []
    for i in range(n):
        cell = i * (COLS * ROWS) // n
        patch, fbox, _, src = faces[i % len(faces)]
        if (i // len(faces)) % 2 == 1:  # every other round mirrored
            patch = ImageOps.mirror(patch)
            fbox = (patch.size[0] - fbox[2], fbox[1], patch.size[0] - fbox[0], fbox[3])
        col, row = cell % COLS, cell // COLS
        fw = 100 + (i * 7) % 21  # face widths 100..120 px
        k = fw / (fbox[2] - fbox[0])
        pw, ph = max(1, int(round(patch.size[0] * k))), max(1, int(round(patch.size[1] * k)))
        sp = np.asarray(patch.resize((pw, ph), Image.BILINEAR)).astype(np.float32)
        f0 = (i * 3) % 24
        f1 = FRAMES - 1 - (i * 5) % 30
        x0 = col * cw + fw * 0.75
        x1 = (col + 1) * cw - fw * 0.75
        if row % 2:  # alternate directions per row
            x0, x1 = x1, x0
        cy = row * ch + ch / 2
        people.append(dict(id=i, src=src, sp=sp, fbox=fbox, k=k, f0=f0, f1=f1, x0=x0, x1=x1, cy=cy, phase=i * 0.7))
    truth = {"fps": FPS, "width": W, "height": H, "frames": FRAMES,
             "persons": [{"id": p["id"], "source": p["src"], "boxes": []} for p in people]}
    mp4 = os.path.join(args.out, "crowd.mp4")
    enc = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-g", "50",
         "-crf", "23", mp4],
        stdin=subprocess.PIPE)
    for f in range(FRAMES):
        frame = bg.copy()
        for p in people:
            if not (p["f0"] <= f <= p["f1"]):
                continue
            t = (f - p["f0"]) / max(1, p["f1"] - p["f0"])
            cx = p["x0"] + (p["x1"] - p["x0"]) * t
            cy = p["cy"] + 6 * math.sin(p["phase"] + f / 9)
            box = make_demo.paste(frame, p["sp"], p["fbox"], p["k"], cx, cy)
            if box is None:
                continue
            truth["persons"][p["id"]]["boxes"].append([f] + [round(v, 1) for v in box])
        enc.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit("make_crowd: ffmpeg failed")
    make_demo.to_annexb(mp4, os.path.join(args.out, "crowd.h264"))
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(truth, fh)
    most = max(sum(1 for p in people if p["f0"] <= f <= p["f1"]) for f in range(FRAMES))
    print(f"make_crowd: {len(people)} people, up to {most} in view at once, {FRAMES} frames -> {args.out}")


if __name__ == "__main__":
    main()
