//! The face stage: what becomes of a track's faces. Each face is scored
//! ([`quality`]), the best one per track held ([`keep`]) and turned into
//! ONE event when the track ends ([`event`], with stitching of a person
//! hidden too long for the tracker); zone crossings and dwell ([`zones`])
//! and attention counts ([`attention`]) ride along. Today the track thread
//! runs this stage (`track::worker`); it depends on tracks, never the
//! other way round.

pub mod attention;
pub mod event;
pub mod keep;
pub mod quality;
pub mod zones;
