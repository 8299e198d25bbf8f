//! Greedy non-maximum suppression, in place, without allocating.

use super::{Detection, Detections};

/// Keeps the highest-scoring detection of every group overlapping by more
/// than `iou_threshold`; the survivors stay sorted by falling score.
pub fn nms(dets: &mut Detections, iou_threshold: f32) {
    dets.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..dets.len() {
        let cand: Detection = dets[i];
        if dets[..kept].iter().all(|k| k.bbox.iou(&cand.bbox) <= iou_threshold) {
            dets[kept] = cand;
            kept += 1;
        }
    }
    dets.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    fn det(x: f32, y: f32, s: f32, score: f32) -> Detection {
        Detection { bbox: BBox::new(x, y, x + s, y + s), score, keypoints: Default::default() }
    }

    #[test]
    fn overlapping_boxes_collapse_to_the_best() {
        let mut d = Detections::new();
        d.push(det(0.0, 0.0, 10.0, 0.6)).unwrap();
        d.push(det(1.0, 1.0, 10.0, 0.9)).unwrap();
        d.push(det(50.0, 50.0, 10.0, 0.7)).unwrap();
        d.push(det(51.0, 50.0, 10.0, 0.5)).unwrap();
        nms(&mut d, 0.3);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].score, 0.9);
        assert_eq!(d[1].score, 0.7);
    }

    #[test]
    fn disjoint_boxes_all_survive_and_threshold_is_respected() {
        let mut d = Detections::new();
        for i in 0..5 {
            d.push(det(i as f32 * 20.0, 0.0, 10.0, 0.5 + i as f32 * 0.01)).unwrap();
        }
        nms(&mut d, 0.3);
        assert_eq!(d.len(), 5);
        // IoU of these two is 0.4737: kept at threshold 0.5, merged at 0.3.
        let mut d = Detections::new();
        d.push(det(0.0, 0.0, 10.0, 0.9)).unwrap();
        d.push(det(0.0, 3.5, 10.0, 0.8)).unwrap();
        let mut d2 = d.clone();
        nms(&mut d, 0.5);
        nms(&mut d2, 0.3);
        assert_eq!((d.len(), d2.len()), (2, 1));
    }
}
