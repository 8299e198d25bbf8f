"""Builds tracking test videos with ground truth from real face photos.

Scenarios (1280x720, 25 fps; x264 defaults to MP4, then Annex B):
- `pole`: six people walk across past a pole that hides each of them from
  the detector for about 24-53 frames (1-2 s), at walking speeds, one lane
  each;
- `mixed`: crossings (two people in opposite directions on close lanes),
  people walking in and out of the frame, one who stops for 3 s and walks
  on, and a ~2 s full occlusion behind a wall segment;
- `stay`: one person in view for 20 s (swaying a little), one passing
  through in 0.8 s (realtime-mode events: tests/realtime.rs).

`truth.json` (the demo's format) has each person's face box on every frame
where the face is entirely visible (not behind the occluder, inside the
picture); `gt.txt` is the same in MOTChallenge format for py-motmetrics.
Deterministic: the same inputs give the same frames.
"""
import argparse
import json
import os
import subprocess

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter

import make_demo

W, H, FPS = 1280, 720, 25


def plans(scenario):
    """Per person: list of (frame, cx, cy) keyframes (linear in between), face width."""
    if scenario == "stay":
        # One person stays in view for 20 s (frames 25..525), swaying; one
        # passes quickly (in view 0.8 s) on another lane.
        sway = [(f, 520 + 30 * np.sin(f / 12.0), 300 + 4 * np.sin(f / 7.0)) for f in range(25, 526)]
        return [(sway, 96), ([(300, 700, 560), (322, 1340, 555)], 84)], [], 550
    if scenario == "pole":
        # Pole 120 px wide at x 580..700; faces 80-88 px wide. A face is out
        # of the detector's sight while less than ~35 px of it shows, about
        # 110 px of walking: at 4.6..2.1 px a frame, 24..53 frames (1-2 s).
        out = []
        for i, v in enumerate([4.6, 3.8, 3.2, 2.8, 2.4, 2.1]):
            y = 90 + i * 110
            f0 = 6 * i
            d = 700  # path length
            x0, x1 = (290, 290 + d) if i % 2 == 0 else (990, 990 - d)
            out.append(([(f0, x0, y), (f0 + int(d / v), x1, y)], 80 + (i % 3) * 4))
        return out, [(580, 0, 700, H)], 370
    # mixed
    out = [
        # two crossings on close lanes, opposite directions: the faces
        # overlap by about half their height as they pass
        ([(0, -60, 200), (200, 1340, 215)], 84),
        ([(10, 1340, 290), (210, -60, 275)], 80),
        ([(40, -60, 545), (230, 1340, 525)], 88),
        ([(50, 1340, 420), (250, -60, 450)], 84),
        # walks in, stops for 3 s, walks on and out
        ([(60, 1340, 340), (110, 900, 340), (185, 900, 342), (260, -60, 345)], 90),
        # behind a wall segment (x 360..500, below y 580) for ~2 s
        ([(0, 120, 650), (207, 700, 650)], 76),
    ]
    return out, [(360, 580, 500, H)], 280


def position(keys, f):
    if f < keys[0][0] or f > keys[-1][0]:
        return None
    for (fa, xa, ya), (fb, xb, yb) in zip(keys, keys[1:]):
        if fa <= f <= fb:
            t = (f - fa) / max(1, fb - fa)
            return xa + (xb - xa) * t, ya + (yb - ya) * t
    return keys[-1][1], keys[-1][2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenario", choices=["pole", "mixed", "stay"], default="pole")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ort.set_default_logger_severity(3)
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    faces = [f for f in make_demo.sprites(sess, args.photos) if f[2] > 0.7]
    faces.sort(key=lambda f: -(f[1][2] - f[1][0]))
    people, occluders, frames = plans(args.scenario)
    rng = np.random.default_rng(5)
    base = rng.integers(40, 200, size=(H // 20, W // 20, 3)).astype(np.uint8)
    bg = np.asarray(Image.fromarray(base).resize((W, H), Image.BICUBIC).filter(ImageFilter.GaussianBlur(7)))
    bg = bg.astype(np.float32)
    # Occluders: textured grey, drawn over the people.
    occ = np.zeros((H, W), bool)
    for (x0, y0, x1, y1) in occluders:
        occ[y0:y1, x0:x1] = True
    occ_tex = (110 + 40 * np.sin(np.arange(W)[None, :] / 7.0) + 0 * np.arange(H)[:, None]).astype(np.float32)
    sprites = []
    for i, (keys, fw) in enumerate(people):
        patch, fbox, _, src = faces[i % len(faces)]
        k = fw / (fbox[2] - fbox[0])
        pw, ph = max(1, int(round(patch.size[0] * k))), max(1, int(round(patch.size[1] * k)))
        sprites.append((np.asarray(patch.resize((pw, ph), Image.BILINEAR)).astype(np.float32), fbox, k, src))
    truth = {"fps": FPS, "width": W, "height": H, "frames": frames,
             "persons": [{"id": i, "source": s[3], "boxes": []} for i, s in enumerate(sprites)]}
    mp4 = os.path.join(args.out, "video.mp4")
    enc = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "50", "-crf", "20", mp4],
        stdin=subprocess.PIPE)
    gt = []
    for f in range(frames):
        frame = bg.copy()
        for i, ((keys, _), (sp, fb, k, _)) in enumerate(zip(people, sprites)):
            p = position(keys, f)
            if p is None:
                continue
            box = make_demo.paste(frame, sp, fb, k, *p)
            if box is None:
                continue
            bx1, by1, bx2, by2 = box
            inside = bx1 >= 0 and by1 >= 0 and bx2 <= W and by2 <= H
            hidden = inside and occ[int(by1):int(by2), int(bx1):int(bx2)].any()
            if inside and not hidden:
                box = [f, round(bx1, 1), round(by1, 1), round(bx2, 1), round(by2, 1)]
                truth["persons"][i]["boxes"].append(box)
                gt.append(f"{f + 1},{i + 1},{bx1:.1f},{by1:.1f},{bx2 - bx1:.1f},{by2 - by1:.1f},1,-1,-1,-1")
        frame[occ] = occ_tex[occ][:, None]
        enc.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit("make_occlusion: ffmpeg failed")
    make_demo.to_annexb(mp4, os.path.join(args.out, "video.h264"))
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(truth, fh)
    with open(os.path.join(args.out, "gt.txt"), "w") as fh:
        fh.write("\n".join(gt) + "\n")
    hidden = []
    for p in truth["persons"]:
        fs = [b[0] for b in p["boxes"]]
        gaps = [b - a - 1 for a, b in zip(fs, fs[1:]) if b - a > 1]
        hidden.append(max(gaps) if gaps else 0)
    print(f"make_occlusion {args.scenario}: {len(people)} people, longest hidden spans {hidden} frames -> {args.out}")


if __name__ == "__main__":
    main()
