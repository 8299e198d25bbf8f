//! Fixtures shared by the benchmark targets.

use faceflow::detect::Detection;
use faceflow::geom::BBox;

/// A `size`-wide face box at (x, y), 1.2x as tall, with keypoints where a
/// frontal face has them.
pub fn face(x: f32, y: f32, size: f32, score: f32) -> Detection {
    let kp = [[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]];
    Detection {
        bbox: BBox::new(x, y, x + size, y + size * 1.2),
        score,
        keypoints: kp.map(|[a, b]| [x + a * size, y + b * size * 1.2]),
    }
}
