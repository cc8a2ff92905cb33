//! Export packaging and delivery: what turns a folder of de-identified
//! objects into something that can safely leave the hospital.
//!
//! Three steps, each usable alone: a manifest (`manifest.json` and
//! `SHA256SUMS`) that proves completeness, a package sealed with `age` that
//! the partner opens with the standard tools (`age -d … | tar -x`), and an
//! SFTP upload that insists on the partner's known host key.
//!
//! | file | role |
//! |---|---|
//! | `manifest.rs` | walk an export folder, write and verify `manifest.json` and `SHA256SUMS` |
//! | `seal.rs` | reproducible tar streamed into an age encryptor; key generation |
//! | `unseal.rs` | decrypt and unpack safely (no escaping paths, no links) |
//! | `sftp.rs` | SFTP destination URLs and the checked upload |
//! | `host_key.rs` | the server's host key against `known_hosts`, and steering libssh2 to the listed key types |

mod host_key;
mod manifest;
mod seal;
mod sftp;
mod unseal;

pub use manifest::{Manifest, ManifestEntry, verify_manifest, write_manifest};
pub use seal::{Recipients, Sealed, generate_age_identity, seal};
pub use sftp::{SftpTarget, UploadReceipt, upload};
pub use unseal::{UnsealKey, unseal};

#[cfg(test)]
mod tests;
