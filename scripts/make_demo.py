"""Builds faceflow's built-in demo video from real face photos.

Faces are found in the photos with the same CenterFace model faceflow uses,
cut out with a soft elliptical mask and moved across a textured background
along known paths, one person at a time per lane so ground truth is exact.
The video is encoded by ffmpeg/x264 (Annex B .h264 and .mp4) and
`truth.json` records every person's face box on every frame.
Deterministic: the same inputs give the same frames.
"""
import argparse
import json
import os
import subprocess

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter

W, H, FPS = 640, 480, 25


def detect(sess, img, thr=0.5):
    """CenterFace on an RGB uint8 image; returns [(x1,y1,x2,y2,score)]."""
    h0, w0 = img.shape[:2]
    w1, h1 = (w0 + 31) // 32 * 32, (h0 + 31) // 32 * 32
    rs = np.asarray(Image.fromarray(img).resize((w1, h1), Image.BILINEAR), dtype=np.float32)
    blob = rs.transpose(2, 0, 1)[None]
    heat, scale, off, _ = sess.run(None, {"input.1": blob})
    out = []
    ys, xs = np.where(heat[0, 0] > thr)
    for y, x in zip(ys, xs):
        s0, s1 = np.exp(scale[0, 0, y, x]) * 4, np.exp(scale[0, 1, y, x]) * 4
        cx, cy = (x + off[0, 1, y, x] + 0.5) * 4, (y + off[0, 0, y, x] + 0.5) * 4
        out.append((cx - s1 / 2, cy - s0 / 2, cx + s1 / 2, cy + s0 / 2, float(heat[0, 0, y, x])))
    out.sort(key=lambda b: -b[4])
    keep = []
    for b in out:
        if all(iou(b, k) < 0.3 for k in keep):
            keep.append(b)
    sx, sy = w0 / w1, h0 / h1
    return [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy, b[4]) for b in keep]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def sprites(sess, photos):
    """Face sprites (RGBA patch, face box inside the patch)."""
    out = []
    for name in sorted(os.listdir(photos)):
        img = np.asarray(Image.open(os.path.join(photos, name)).convert("RGB"))
        for (x1, y1, x2, y2, s) in detect(sess, img):
            bw, bh = x2 - x1, y2 - y1
            m = 0.45
            px1, py1 = int(max(0, x1 - m * bw)), int(max(0, y1 - m * bh))
            px2, py2 = int(min(img.shape[1], x2 + m * bw)), int(min(img.shape[0], y2 + m * bh))
            patch = Image.fromarray(img[py1:py2, px1:px2])
            mask = Image.new("L", patch.size, 0)
            mw, mh = patch.size
            yy, xx = np.mgrid[0:mh, 0:mw]
            d = ((xx - mw / 2) / (mw / 2)) ** 2 + ((yy - mh / 2) / (mh / 2)) ** 2
            mask = Image.fromarray((np.clip((1.0 - d) * 4.0, 0, 1) * 255).astype(np.uint8))
            patch.putalpha(mask)
            out.append((patch, (x1 - px1, y1 - py1, x2 - px1, y2 - py1), s, name))
    return out


def paste(frame, sp, fbox, k, cx, cy):
    """Alpha-blends sprite `sp` (RGBA, float) into `frame` so that its face
    box (`fbox` in the unscaled patch, scaled by `k`) is centred on (cx, cy).
    Returns the face box (x1, y1, x2, y2) in the frame, or None when no part
    of the sprite is inside the frame."""
    h, w = frame.shape[:2]
    ph, pw = sp.shape[:2]
    fcx, fcy = (fbox[0] + fbox[2]) / 2 * k, (fbox[1] + fbox[3]) / 2 * k
    ox, oy = int(round(cx - fcx)), int(round(cy - fcy))
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(w, ox + pw), min(h, oy + ph)
    if x1 <= x0 or y1 <= y0:
        return None
    s = sp[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    a = s[..., 3:4] / 255.0
    frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - a) + s[..., :3] * a
    return ox + fbox[0] * k, oy + fbox[1] * k, ox + fbox[2] * k, oy + fbox[3] * k


def to_annexb(mp4, out):
    """The H.264 stream of `mp4` as an Annex B file (stream copy)."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", mp4, "-c", "copy", "-bsf:v", "h264_mp4toannexb",
                    "-f", "h264", out], check=True)


def background(rng):
    base = rng.integers(40, 200, size=(H // 16, W // 16, 3)).astype(np.uint8)
    bg = Image.fromarray(base).resize((W, H), Image.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    return np.asarray(bg).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    faces = sprites(sess, args.photos)
    faces = [f for f in faces if f[2] > 0.7]
    # Several distinct people: the largest faces of the group photo plus the portrait.
    faces.sort(key=lambda f: -(f[1][2] - f[1][0]))
    people = faces[:5]
    rng = np.random.default_rng(7)
    bg = background(rng)
    # Each person: entry frame, exit frame, start/end centre, face width start/end.
    plans = [
        (0, 110, (-60, 150), (700, 170), 84, 96),
        (60, 180, (700, 340), (-60, 320), 100, 90),
        (120, 240, (150, -60), (260, 540), 80, 110),
        (190, 300, (-60, 330), (700, 300), 96, 104),
        (230, 340, (700, 130), (-60, 150), 110, 96),
    ]
    n_frames = 350
    truth = {"fps": FPS, "width": W, "height": H, "frames": n_frames, "persons": []}
    tracks = []
    for pid, ((patch, fbox, score, src), plan) in enumerate(zip(people, plans)):
        tracks.append((pid, patch, fbox, plan))
        truth["persons"].append({"id": pid, "source": src, "boxes": []})
    enc = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264",
         # x264's defaults (High profile, CABAC, 3 B-frames with pyramid), as
         # cameras and exports make them; a 2 s GOP as cameras send.
         "-pix_fmt", "yuv420p", "-g", "50", "-crf", "20",
         # MP4 first: the muxer keeps the encoder's presentation times (raw
         # H.264 has none, and remuxing it guesses them wrong around B-frames).
         os.path.join(args.out, "demo.mp4")],
        stdin=subprocess.PIPE)
    for f in range(n_frames):
        frame = bg.copy()
        for pid, patch, fbox, (f0, f1, c0, c1, w0, w1) in tracks:
            if not (f0 <= f <= f1):
                continue
            t = (f - f0) / (f1 - f0)
            cx, cy = c0[0] + (c1[0] - c0[0]) * t, c0[1] + (c1[1] - c0[1]) * t
            fw = w0 + (w1 - w0) * t
            k = fw / (fbox[2] - fbox[0])
            pw, ph = max(1, int(round(patch.size[0] * k))), max(1, int(round(patch.size[1] * k)))
            sp = np.asarray(patch.resize((pw, ph), Image.BILINEAR)).astype(np.float32)
            box = paste(frame, sp, fbox, k, cx, cy)
            if box is None:
                continue
            bx1, by1, bx2, by2 = box
            # Truth keeps only frames where the face is fully inside the picture.
            if bx1 >= 0 and by1 >= 0 and bx2 <= W and by2 <= H:
                truth["persons"][pid]["boxes"].append(
                    [f, round(bx1, 1), round(by1, 1), round(bx2, 1), round(by2, 1)])
        enc.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit("make_demo: ffmpeg failed")
    to_annexb(os.path.join(args.out, "demo.mp4"), os.path.join(args.out, "demo.h264"))
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(truth, fh)
    print(f"make_demo: {len(tracks)} people, {n_frames} frames -> {args.out}")


if __name__ == "__main__":
    main()
