//! Outbox sink: one JSON record and two JPEGs (face crop, full frame) per
//! event in `<dir>/<camera>/`, each written to a temporary name, fsynced and
//! renamed, so a reader never sees a half-written file. Files are
//! owner-only (or readable by `outbox.group`): they hold faces. How long
//! they stay is `retention`'s job.

use std::path::{Path, PathBuf};

use super::{Delivery, Sink, SinkError, SpoolRecord};
use crate::private_files::Access;

pub(crate) struct OutboxSink {
    dir: PathBuf,
    access: Access,
}

impl OutboxSink {
    pub fn new(dir: &Path, access: Access) -> Result<Self, SinkError> {
        access.create_dir_all(dir).map_err(|e| SinkError::caused(format!("outbox {}", dir.display()), e))?;
        Ok(OutboxSink { dir: dir.to_path_buf(), access })
    }
}

impl Sink for OutboxSink {
    fn name(&self) -> &str {
        "outbox"
    }

    fn deliver(&self, ev: &SpoolRecord, _timeout: std::time::Duration) -> Delivery {
        match self.write(ev) {
            Ok(()) => Delivery::Done(String::new()),
            Err(e) => Delivery::Retry(e.to_string()),
        }
    }
}

impl OutboxSink {
    fn write(&self, ev: &SpoolRecord) -> Result<(), SinkError> {
        let dir = self.dir.join(&ev.record.camera);
        let ctx = |what: &str, e: std::io::Error| SinkError::caused(format!("outbox {}: {what}", dir.display()), e);
        self.access.create_dir_all(&dir).map_err(|e| ctx("create", e))?;
        let id = &ev.record.id;
        // Zone events carry no pictures.
        if !ev.face_jpeg.is_empty() {
            self.access
                .write_atomic(&dir.join(format!("{id}_face.jpg")), &ev.face_jpeg)
                .map_err(|e| ctx("face jpeg", e))?;
        }
        if !ev.frame_jpeg.is_empty() {
            self.access
                .write_atomic(&dir.join(format!("{id}_frame.jpg")), &ev.frame_jpeg)
                .map_err(|e| ctx("frame jpeg", e))?;
        }
        let json = serde_json::to_vec_pretty(&ev.record).map_err(|e| SinkError::caused("outbox: record", e))?;
        // The record goes last: its presence means the images are complete.
        self.access.write_atomic(&dir.join(format!("{id}.json")), &json).map_err(|e| ctx("record", e))?;
        Ok(())
    }
}
