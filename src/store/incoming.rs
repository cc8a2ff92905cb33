//! An instance being received: a temporary Part-10 file in the data
//! directory's `tmp/`, written as the data set streams in.
//!
//! The file meta header is written first, from the C-STORE command (SOP
//! class and instance) and the presentation context (transfer syntax), so
//! the data set bytes can be appended exactly as they arrive, never held in
//! memory as a whole. If the transfer is abandoned, dropping the
//! [`Incoming`] deletes the file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use dicom_object::FileMetaTableBuilder;
use tempfile::TempPath;

use crate::queue::Priority;
use crate::store::uid::ValidUid;

/// Our Implementation Class UID, written to every file meta header.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.84022675725647203731933736603946720867";
/// Our Implementation Version Name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("CHESTNODE_", env!("CARGO_PKG_VERSION"));

/// Size of the write buffer in front of the temporary file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// What the C-STORE request told us about the instance before its data.
#[derive(Debug, Clone)]
pub struct IncomingMeta {
    pub sop_class_uid: String,
    pub sop_instance_uid: ValidUid,
    pub transfer_syntax_uid: String,
    pub calling_ae_title: String,
    pub priority: Priority,
}

/// A temporary file receiving one instance.
pub struct Incoming {
    pub(crate) meta: IncomingMeta,
    writer: BufWriter<File>,
    path: TempPath,
    data_set_bytes: u64,
}

impl Incoming {
    /// Creates the temporary file in `tmp_dir` and writes the preamble and
    /// file meta information.
    pub(crate) fn create(tmp_dir: &Path, meta: IncomingMeta) -> io::Result<Incoming> {
        let (file, path) = tempfile::Builder::new()
            .prefix("incoming-")
            .suffix(".part")
            .tempfile_in(tmp_dir)?
            .into_parts();
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let file_meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(meta.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(meta.sop_instance_uid.as_str())
            .transfer_syntax(meta.transfer_syntax_uid.as_str())
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
            .source_application_entity_title(meta.calling_ae_title.as_str())
            .build()
            .map_err(io::Error::other)?;
        writer.write_all(&[0u8; 128])?;
        writer.write_all(b"DICM")?;
        file_meta.write(&mut writer).map_err(io::Error::other)?;
        Ok(Incoming {
            meta,
            writer,
            path,
            data_set_bytes: 0,
        })
    }

    /// Appends data set bytes as received.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.data_set_bytes += bytes.len() as u64;
        Ok(())
    }

    pub fn meta(&self) -> &IncomingMeta {
        &self.meta
    }

    pub fn data_set_bytes(&self) -> u64 {
        self.data_set_bytes
    }

    /// Flushes and fsyncs the file; returns its path (still temporary) and
    /// total size.
    pub(crate) fn finish(self) -> io::Result<(TempPath, IncomingMeta, u64)> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        Ok((self.path, self.meta, size))
    }
}
