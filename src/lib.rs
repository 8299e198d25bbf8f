//! faceflow: real-time, multi-camera face capture for the edge.
//!
//! Stages, one module each: [`ingest`] (files, cameras) -> [`decode`] ->
//! [`detect`] (batched ONNX inference) -> [`track`] (ByteTrack) ->
//! [`quality`] + [`event`] (one best face per track) -> [`sink`].
//! Plumbing: [`pool`] (frame buffers), [`keep`] (held best faces), [`ring`] (SPSC queues), [`board`]
//! (compile-time profile), [`clock`], [`monitor`]; [`pipeline`] wires them.

pub mod alloc_count;
pub mod attention;
pub mod bench;
pub mod board;
pub mod clock;
pub mod config;
pub mod decode;
pub mod demo;
pub mod detect;
pub mod event;
pub mod geom;
pub mod ingest;
pub mod jpeg;
pub mod keep;
pub mod landmarks;
pub mod limits;
pub mod logging;
pub mod monitor;
pub mod pipeline;
pub mod pool;
pub mod quality;
pub mod ring;
pub mod shutdown;
pub mod sink;
pub mod sync;
pub mod track;
pub mod zones;
