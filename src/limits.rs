//! Fixed capacities of the static pipeline and the defaults of the bounded
//! stores: one place both the stages (which size their buffers by them) and
//! the config (which validates against them) read, so the config depends on
//! no stage.

/// Most images in one detector inference (`detector.batch_size`'s ceiling;
/// the detect thread's batch buffers are this long).
pub(crate) const MAX_BATCH: usize = 64;

/// Most zones per camera (`cameras[].zones`).
pub(crate) const MAX_ZONES: usize = 16;

/// Recent faces the panel keeps per camera unless configured
/// (`monitor.recent_faces`).
pub const RECENT_FACES_PER_CAMERA: usize = 8;

/// Dead letters kept per spool unless configured (`sender.dead_letters_max`).
pub(crate) const DEAD_LETTERS_MAX: usize = 1000;

/// Most tiles one frame is cut into (`detect_tiles`).
pub(crate) const MAX_TILES: usize = 16;
