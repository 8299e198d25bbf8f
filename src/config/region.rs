//! The values of `detect_roi` and `detect_tiles` as a camera's config
//! states them, checked as they are read; `detect::region` resolves them
//! against each frame's size.

use serde::Deserialize;

use crate::limits::MAX_TILES;

/// `detect_tiles`: `"off"`, `"auto"` (from `min_face_px`) or `[cols, rows]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "TilesValue")]
pub enum TileSpec {
    #[default]
    Off,
    Auto,
    Grid(u32, u32),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TilesValue {
    Word(String),
    Grid(Vec<u32>),
}

impl TryFrom<TilesValue> for TileSpec {
    type Error = String;
    fn try_from(v: TilesValue) -> Result<Self, String> {
        match v {
            TilesValue::Word(w) if w == "off" => Ok(TileSpec::Off),
            TilesValue::Word(w) if w == "auto" => Ok(TileSpec::Auto),
            TilesValue::Grid(g) if g.len() == 2 && g[0] >= 1 && g[1] >= 1 && (g[0] * g[1]) as usize <= MAX_TILES => {
                Ok(TileSpec::Grid(g[0], g[1]))
            }
            TilesValue::Grid(g) if g.len() == 2 => {
                Err(format!("[cols, rows] must each be >= 1 with at most {MAX_TILES} tiles, got {g:?}"))
            }
            _ => Err("must be \"off\", \"auto\" or [cols, rows]".into()),
        }
    }
}

/// One coordinate of `detect_roi`: pixels, or a share of the frame
/// written as a string ending in `%`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum RegionValue {
    Pixels(f64),
    Percent(String),
}

/// `detect_roi = [x, y, w, h]`: the frame's part the detector sees.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Vec<RegionValue>")]
pub struct RegionSpec {
    /// x, y, width, height; each in pixels or as a share (0..1) of the
    /// frame's width or height.
    pub(crate) parts: [Part; 4],
}

/// A coordinate in pixels or as a share of the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    Px(f64),
    Share(f64),
}

impl TryFrom<Vec<RegionValue>> for RegionSpec {
    type Error = String;
    fn try_from(v: Vec<RegionValue>) -> Result<Self, String> {
        if v.len() != 4 {
            return Err(format!("must be [x, y, width, height], got {} values", v.len()));
        }
        let mut parts = [Part::Px(0.0); 4];
        for (i, (value, name)) in v.iter().zip(["x", "y", "width", "height"]).enumerate() {
            parts[i] = match value {
                RegionValue::Pixels(p) if p.is_finite() && *p >= 0.0 => Part::Px(*p),
                RegionValue::Pixels(p) => return Err(format!("{name} must be >= 0 pixels, got {p}")),
                RegionValue::Percent(s) => {
                    let pct = s
                        .trim()
                        .strip_suffix('%')
                        .and_then(|n| n.trim().parse::<f64>().ok())
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(|| format!("{name} {s:?}: write pixels (a number) or a share like \"25%\""))?;
                    Part::Share(pct / 100.0)
                }
            };
        }
        for (i, name) in [(2, "width"), (3, "height")] {
            if matches!(parts[i], Part::Px(p) | Part::Share(p) if p == 0.0) {
                return Err(format!("{name} must be more than 0"));
            }
        }
        for (a, b, axis) in [(0, 2, "x + width"), (1, 3, "y + height")] {
            if let (Part::Share(s), Part::Share(l)) = (parts[a], parts[b]) {
                if s + l > 1.0 + 1e-9 {
                    return Err(format!("{axis} is past the frame's edge ({:.0}%)", (s + l) * 100.0));
                }
            }
        }
        Ok(RegionSpec { parts })
    }
}
