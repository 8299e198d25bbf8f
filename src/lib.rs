//! faceflow: real-time, multi-camera face capture for the edge.
//!
//! Stages, one module each: [`ingest`] (files, cameras) -> [`decode`] ->
//! [`detect`] (batched ONNX inference) -> [`track`] (ByteTrack) ->
//! [`face`] (quality, one best face per track, zones) with [`landmarks`]
//! -> [`sink`]. Plumbing: [`pool`] (frame buffers), [`ring`] (SPSC queues),
//! [`board`] (compile-time profile), [`clock`], [`monitor`]; [`pipeline`]
//! wires them. ARCHITECTURE.md draws the layers.

pub mod board;
pub mod clock;
pub mod config;
pub mod decode;
pub mod detect;
mod error;
pub mod face;
pub mod geom;
pub mod ingest;
pub mod jpeg;
pub mod landmarks;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod pipeline;
pub mod pool;
pub mod private_files;
pub mod ring;
pub mod shutdown;
pub mod sink;
pub mod sync;
pub mod track;
