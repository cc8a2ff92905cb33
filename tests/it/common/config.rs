//! Configuration files for `chestnode serve --config`, written by tests:
//! the pieces several tests share (quick outbox retries, a destination on
//! loopback) and the file itself.

use std::path::{Path, PathBuf};

/// An `[outbox]` that retries after a second or two, so that tests see
/// retries and recoveries quickly.
pub const FAST_RETRIES: &str =
    "[outbox]\nretry_delay_secs = 1\nmax_retry_delay_secs = 2\ntimeout_secs = 10\n";

/// A `[[destinations]]` entry for a peer on loopback; `kinds` is the TOML
/// array's inside, e.g. `"sr", "sc"`.
pub fn destination(name: &str, ae_title: &str, port: u16, kinds: &str) -> String {
    format!(
        "\n[[destinations]]\nname = \"{name}\"\nae_title = \"{ae_title}\"\n\
         host = \"127.0.0.1\"\nport = {port}\nkinds = [{kinds}]\n"
    )
}

/// Writes `body` as `root/chestnode.toml` and returns its path.
pub fn write_config(root: &Path, body: &str) -> PathBuf {
    let path = root.join("chestnode.toml");
    std::fs::write(&path, body).unwrap();
    path
}
