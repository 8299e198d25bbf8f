#!/usr/bin/env python3
"""Two runs' face events on one video, against its ground truth: are they
the same events? Used to compare detector precisions (FP16 against FP32 on
the GPU, `scripts/gpu-bench.sh faces`; INT8 against FP32 on the CPU).

For each run: its best-face events (the last record of each track part),
the truth person each one's best box matches (IoU > 0.5 at its best frame),
people captured, and events matching nobody. Then, person by person, the
two runs' best faces side by side: same best frame or not, the boxes' IoU
where it is the same frame, and the quality and confidence differences.

Exit status 1 when the runs capture different people or one of them has
events matching nobody that the other has not: "the same events" is the
claim it checks. Figures go to stdout, one JSON summary line last.

Usage: scripts/compare_events.py TRUTH.json OUTBOX_A OUTBOX_B [--names A B]
"""
import argparse, glob, json, os, sys


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def best_faces(outbox):
    """The last record of every (camera, track, part): its best face."""
    last = {}
    for path in glob.glob(os.path.join(outbox, "**", "*.json"), recursive=True):
        try:
            e = json.load(open(path))
        except (OSError, ValueError):
            continue
        if not isinstance(e, dict) or e.get("kind") != "face" or "bbox" not in e:
            continue
        key = (e["camera"], e["track_id"], e.get("part", 0))
        if key not in last or e.get("sequence", 0) > last[key].get("sequence", 0):
            last[key] = e
    return list(last.values())


def person_of(e, truth):
    """The truth person whose box nearest the event's best frame (within 10
    frames, as `faceflow demo` judges) overlaps its box most, IoU > 0.5."""
    best, best_iou = None, 0.5
    for p in truth["persons"]:
        near = [b for b in p["boxes"] if abs(b[0] - e["best_frame"]) <= 10]
        if near:
            b = min(near, key=lambda b: abs(b[0] - e["best_frame"]))
            v = iou(e["bbox"], b[1:5])
            if v > best_iou:
                best, best_iou = p["id"], v
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("truth")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--names", nargs=2, default=["A", "B"])
    args = ap.parse_args()
    truth = json.load(open(args.truth))
    people = [p["id"] for p in truth["persons"]]
    runs = {}
    for name, outbox in zip(args.names, (args.a, args.b)):
        events = best_faces(outbox)
        if not events:
            print(f"compare_events: no face events under {outbox}", file=sys.stderr)
            sys.exit(2)
        by_person, strays = {}, []
        for e in events:
            pid = person_of(e, truth)
            if pid is None:
                strays.append(e)
            else:
                # A person split into several events: keep the best face.
                if pid not in by_person or e["quality"] > by_person[pid]["quality"]:
                    by_person[pid] = e
        runs[name] = (events, by_person, strays)
        print(f"{name}: {len(events)} events, {len(by_person)} of {len(people)} people captured, "
              f"{len(events) - len(by_person) - len(strays)} repeat events of a captured person, "
              f"{len(strays)} events matching nobody")
    (na, nb) = args.names
    (_, pa, sa), (_, pb, sb) = runs[na], runs[nb]
    both = [p for p in people if p in pa and p in pb]
    same_frame = [p for p in both if pa[p]["best_frame"] == pb[p]["best_frame"]]
    box_iou = [iou(pa[p]["bbox"], pb[p]["bbox"]) for p in same_frame]
    dq = [abs(pa[p]["quality"] - pb[p]["quality"]) for p in both]
    dc = [abs(pa[p]["confidence"] - pb[p]["confidence"]) for p in both]
    mean = lambda v: sum(v) / len(v) if v else float("nan")
    print(f"people captured by both: {len(both)}; only by {na}: {sorted(set(pa) - set(pb))}; only by {nb}: {sorted(set(pb) - set(pa))}")
    print(f"same best frame: {len(same_frame)} of {len(both)}; box IoU there: mean {mean(box_iou):.3f}, min {min(box_iou, default=float('nan')):.3f}")
    print(f"best-face quality |{na} - {nb}|: mean {mean(dq):.4f}, max {max(dq, default=float('nan')):.4f}; "
          f"confidence: mean {mean(dc):.4f}, max {max(dc, default=float('nan')):.4f}")
    same = set(pa) == set(pb) and len(sa) == len(sb)
    print(json.dumps({
        "names": args.names, "people": len(people),
        "captured": {na: len(pa), nb: len(pb)}, "strays": {na: len(sa), nb: len(sb)},
        "both": len(both), "same_best_frame": len(same_frame),
        "box_iou_mean": mean(box_iou), "quality_diff_mean": mean(dq), "quality_diff_max": max(dq, default=None),
        "same_events": same,
    }))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
