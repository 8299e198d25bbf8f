//! Boxes and points in frame pixel coordinates.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x1, y1, x2, y2 }
    }
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }
    pub(crate) fn area(&self) -> f32 {
        self.width() * self.height()
    }
    /// The same box in a picture scaled by `sx` across and `sy` down.
    pub fn scaled(&self, sx: f32, sy: f32) -> BBox {
        BBox { x1: self.x1 * sx, y1: self.y1 * sy, x2: self.x2 * sx, y2: self.y2 * sy }
    }
    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }
    /// Area of the overlap with `o`.
    pub(crate) fn intersection(&self, o: &BBox) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        iw * ih
    }
    pub fn iou(&self, o: &BBox) -> f32 {
        let inter = self.intersection(o);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
    /// Clips to a `w`x`h` picture.
    pub(crate) fn clip(&self, w: f32, h: f32) -> BBox {
        BBox::new(self.x1.clamp(0.0, w), self.y1.clamp(0.0, h), self.x2.clamp(0.0, w), self.y2.clamp(0.0, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_basics() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = a.iou(&BBox::new(5.0, 0.0, 15.0, 10.0));
        assert!((half - 50.0 / 150.0).abs() < 1e-6);
    }
}
