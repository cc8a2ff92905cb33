//! An instance being received: a temporary Part-10 file in the data
//! directory's `tmp/`, written as the data set streams in.
//!
//! The file meta header is written first, from the C-STORE command (SOP
//! class and instance) and the presentation context (transfer syntax), so
//! the data set bytes can be appended exactly as they arrive, never held in
//! memory as a whole. If the transfer is abandoned, dropping the
//! [`Incoming`] deletes the file.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use dicom_object::FileMetaTableBuilder;
use tempfile::TempPath;

use crate::queue::Priority;
use crate::store::uid::ValidUid;

/// Our Implementation Class UID, written to every file meta header.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.84022675725647203731933736603946720867";
/// Our Implementation Version Name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("CHESTNODE_", env!("CARGO_PKG_VERSION"));

/// After this many bytes are written, ask the kernel to start writing them
/// to disk, so the fsync at the end has little left to wait for.
const WRITEBACK_CHUNK_BYTES: u64 = 1 << 19;

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
    file: File,
    path: TempPath,
    data_set_bytes: u64,
    /// File offset up to which writeback has been started.
    writeback_started: u64,
    /// Bytes in the file so far (meta header included).
    file_bytes: u64,
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
        let header = part10_header(&meta)?;
        let mut file = file;
        file.write_all(&header)?;
        Ok(Incoming {
            meta,
            file,
            path,
            data_set_bytes: 0,
            writeback_started: 0,
            file_bytes: header.len() as u64,
        })
    }

    /// Appends data set bytes as received.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.data_set_bytes += bytes.len() as u64;
        self.file_bytes += bytes.len() as u64;
        if self.file_bytes - self.writeback_started >= WRITEBACK_CHUNK_BYTES {
            start_writeback(&self.file, self.writeback_started, self.file_bytes);
            self.writeback_started = self.file_bytes;
        }
        Ok(())
    }

    pub fn meta(&self) -> &IncomingMeta {
        &self.meta
    }

    pub fn data_set_bytes(&self) -> u64 {
        self.data_set_bytes
    }

    /// Bytes in the file so far, file meta information included.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Where the temporary file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until everything written is on disk (fsync).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// The temporary path (still deleted on drop) and what the command said.
    pub(crate) fn into_parts(self) -> (TempPath, IncomingMeta) {
        (self.path, self.meta)
    }
}

/// The preamble and file meta information written before the data set.
pub(crate) fn part10_header(meta: &IncomingMeta) -> io::Result<Vec<u8>> {
    let file_meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(meta.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(meta.sop_instance_uid.as_str())
        .transfer_syntax(meta.transfer_syntax_uid.as_str())
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .source_application_entity_title(meta.calling_ae_title.as_str())
        .build()
        .map_err(io::Error::other)?;
    let mut header = Vec::with_capacity(512);
    header.extend_from_slice(&[0u8; 128]);
    header.extend_from_slice(b"DICM");
    file_meta.write(&mut header).map_err(io::Error::other)?;
    Ok(header)
}

/// Starts (without waiting for) writeback of `start..end` of the file, so
/// disk writes overlap with receiving the rest of the data set.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, start: u64, end: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain system call on a file descriptor we own; no memory is
    // passed. Failure only means the final fsync does all the work.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            start as libc::off64_t,
            (end - start) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _start: u64, _end: u64) {}
