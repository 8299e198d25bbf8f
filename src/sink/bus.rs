//! The event message of the bus sinks (MQTT, Redis Streams): one JSON
//! object per event with a `schema` version, the event's id (stable across
//! retries, so consumers can drop duplicates), the record's fields, a mesh
//! summary (pose, gaze, eyes; the 478 points only when asked) and the face
//! and frame JPEGs inline (base64). A message over its size limit gets a
//! smaller frame (halved until it fits), then none, saying why.

use serde_json::{json, Value};

use super::http::base64;
use super::spool::SpoolRecord;
use crate::jpeg::{JpegDecoder, JpegEncoder};
use crate::pool::I420;

/// The message format's version; consumers check it.
pub const SCHEMA: &str = "faceflow.event/1";

/// Frames are not made smaller than this width: below it, the frame is
/// left out instead.
const MIN_FRAME_WIDTH: u32 = 160;

/// How one event's message is built.
#[derive(Clone, Copy, Debug)]
pub struct MessageOptions<'a> {
    pub node: &'a str,
    pub include_frame: bool,
    pub mesh_points: bool,
    /// The largest message (bytes of JSON); 0: no limit.
    pub max_bytes: usize,
}

/// The message, and what was done to fit it.
pub struct Message {
    pub json: String,
    /// The frame was re-encoded smaller to fit (its width now).
    pub frame_reduced_to: Option<u32>,
    /// The frame was left out (why).
    pub frame_omitted: Option<&'static str>,
}

/// The JPEG codecs a sink keeps for making frames smaller (created on the
/// first oversized message).
#[derive(Default)]
pub struct Shrinker {
    codecs: Option<(JpegDecoder, JpegEncoder)>,
    i420: Vec<u8>,
    half: Vec<u8>,
}

/// The event's message within `opts.max_bytes`: first whole, then with the
/// frame halved (and re-encoded) until it fits, then without the frame.
/// Never fails: a message that does not fit even without the frame is
/// returned as it is (the face crop and record are what the event is).
pub fn message(ev: &SpoolRecord, opts: MessageOptions<'_>, shrinker: &mut Shrinker) -> Message {
    let base = base_value(ev, opts);
    let with_frame = |frame: &[u8], reduced: Option<u32>| {
        let mut v = base.clone();
        v["frame_jpeg_base64"] = base64(frame).into();
        if let Some(w) = reduced {
            v["frame_reduced_to_width"] = w.into();
        }
        v.to_string()
    };
    let fits = |s: &str| opts.max_bytes == 0 || s.len() <= opts.max_bytes;
    if opts.include_frame && !ev.frame_jpeg.is_empty() {
        let json = with_frame(&ev.frame_jpeg, None);
        if fits(&json) {
            return Message { json, frame_reduced_to: None, frame_omitted: None };
        }
        if let Some((jpeg, width)) = shrinker.smaller_until(&ev.frame_jpeg, |jpeg, w| fits(&with_frame(jpeg, Some(w))))
        {
            return Message {
                json: with_frame(&jpeg, Some(width)),
                frame_reduced_to: Some(width),
                frame_omitted: None,
            };
        }
        let mut v = base;
        v["frame_omitted"] = "too large for max_message_bytes, even reduced".into();
        return Message { json: v.to_string(), frame_reduced_to: None, frame_omitted: Some("too large") };
    }
    let mut v = base;
    if opts.include_frame {
        v["frame_omitted"] = "the event has no frame".into();
    }
    Message { json: v.to_string(), frame_reduced_to: None, frame_omitted: None }
}

/// Everything but the frame.
fn base_value(ev: &SpoolRecord, opts: MessageOptions<'_>) -> Value {
    let mut record = serde_json::to_value(&ev.record).unwrap_or_default();
    if !opts.mesh_points {
        if let Some(mesh) = record.get_mut("mesh").and_then(Value::as_object_mut) {
            mesh.remove("points");
        }
    }
    let mut v = json!({ "schema": SCHEMA, "node": opts.node });
    if let (Some(out), Some(fields)) = (v.as_object_mut(), record.as_object()) {
        for (k, val) in fields {
            out.insert(k.clone(), val.clone());
        }
    }
    v["face_jpeg_base64"] = base64(&ev.face_jpeg).into();
    v
}

impl Shrinker {
    /// `jpeg` halved in size again and again until `fits` says yes; None
    /// when it gets narrower than [`MIN_FRAME_WIDTH`] first or cannot be
    /// decoded.
    fn smaller_until(&mut self, jpeg: &[u8], fits: impl Fn(&[u8], u32) -> bool) -> Option<(Vec<u8>, u32)> {
        if self.codecs.is_none() {
            self.codecs = Some((JpegDecoder::new().ok()?, JpegEncoder::new().ok()?));
        }
        let (dec, enc) = self.codecs.as_mut()?;
        let (mut w, mut h) = dec.decode_to_i420(jpeg, &mut self.i420).ok()?;
        let mut out = Vec::new();
        loop {
            let (hw, hh) = ((w / 2) & !1, (h / 2) & !1);
            if hw < MIN_FRAME_WIDTH || hh < 2 {
                return None;
            }
            halve_i420(&self.i420, w, h, &mut self.half);
            std::mem::swap(&mut self.i420, &mut self.half);
            (w, h) = (hw, hh);
            let pic = I420::new(&self.i420, w, h);
            let whole = crate::geom::BBox::new(0.0, 0.0, w as f32, h as f32);
            enc.encode_i420(&pic, &whole, 80, &mut out).ok()?;
            if fits(&out, w) {
                return Some((out, w));
            }
        }
    }
}

/// A packed I420 picture at half its size (even dimensions), each output
/// sample the mean of the 2x2 it covers.
fn halve_i420(src: &[u8], w: u32, h: u32, out: &mut Vec<u8>) {
    let (w, h) = (w as usize, h as usize);
    let (hw, hh) = ((w / 2) & !1, (h / 2) & !1);
    out.clear();
    out.resize(crate::pool::i420_len(hw as u32, hh as u32), 0);
    let plane = |src: &[u8], sw: usize, dst: &mut [u8], dw: usize, dh: usize| {
        for y in 0..dh {
            for x in 0..dw {
                let s = |yy: usize, xx: usize| src[yy * sw + xx] as u16;
                let (sy, sx) = (2 * y, 2 * x);
                dst[y * dw + x] = ((s(sy, sx) + s(sy, sx + 1) + s(sy + 1, sx) + s(sy + 1, sx + 1) + 2) / 4) as u8;
            }
        }
    };
    let (ys, cs) = (w * h, (w / 2) * (h / 2));
    let (dys, dcs) = (hw * hh, (hw / 2) * (hh / 2));
    let (dy, rest) = out.split_at_mut(dys);
    let (du, dv) = rest.split_at_mut(dcs);
    plane(&src[..ys], w, dy, hw, hh);
    plane(&src[ys..ys + cs], w / 2, du, hw / 2, hh / 2);
    plane(&src[ys + cs..ys + 2 * cs], w / 2, dv, hw / 2, hh / 2);
}

/// A sink's latest failure, so a server that stays down is logged once,
/// not at every retry, and its recovery once too.
#[derive(Default)]
pub struct FailureLog(std::sync::Mutex<String>);

impl FailureLog {
    /// Whether `why` differs from the failure logged last (then log it).
    pub fn is_new(&self, why: &str) -> bool {
        let mut last = crate::sync::lock(&self.0);
        if *last == why {
            return false;
        }
        why.clone_into(&mut last);
        true
    }

    /// The failure before this success, if one was logged (and forgets it).
    pub fn recovered(&self) -> Option<String> {
        Some(std::mem::take(&mut *crate::sync::lock(&self.0))).filter(|w| !w.is_empty())
    }
}

/// The node id: `configured`, else the machine's host name, else
/// `faceflow`.
pub fn node_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "faceflow".into())
}

/// One MQTT topic level made of a name: `/`, `+`, `#` and NUL become `_`.
pub fn topic_level(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }).collect()
}

/// A Home Assistant object id made of names: `[a-zA-Z0-9_-]` only.
pub fn object_id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_each_two_by_two() {
        let (w, h) = (4u32, 4u32);
        let mut src = vec![0u8; crate::pool::i420_len(w, h)];
        for (i, px) in src[..16].iter_mut().enumerate() {
            *px = (i * 10) as u8;
        }
        let mut out = Vec::new();
        halve_i420(&src, w, h, &mut out);
        assert_eq!(out.len(), crate::pool::i420_len(2, 2));
        // Top-left 2x2 of the luma: 0, 10, 40, 50 -> 25.
        assert_eq!(out[0], 25);
        assert_eq!(out[3] as u32, (100 + 110 + 140 + 150 + 2) / 4);
    }

    #[test]
    fn names_become_one_topic_level_and_object_ids() {
        assert_eq!(topic_level("door/1 #a+b"), "door_1 _a_b");
        assert_eq!(object_id(&["faceflow", "box 7", "hall/2"]), "faceflow_box_7_hall_2");
    }
}
