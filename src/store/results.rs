//! Result objects on disk: `results/<study UID>/<SOP instance UID>.dcm`,
//! written durably (temporary file, fsync, rename, directory fsync) before
//! the outbox may refer to them.
//!
//! Result UIDs are deterministic, so writing the same result twice (after
//! a crash, or when an image is analysed again) replaces the file with the
//! same content instead of adding a second one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::uid::ValidUid;

/// Folder of the data directory that holds result objects.
pub const RESULTS_DIR: &str = "results";

/// Writes a Part-10 result file and returns its path relative to the data
/// directory. Both UIDs are validated before they become path components.
pub fn write_result(
    data_dir: &Path,
    study_instance_uid: &str,
    sop_instance_uid: &str,
    part10: &[u8],
) -> anyhow::Result<PathBuf> {
    let study = ValidUid::parse(study_instance_uid).context("result Study Instance UID")?;
    let instance = ValidUid::parse(sop_instance_uid).context("result SOP Instance UID")?;
    let relative = Path::new(RESULTS_DIR)
        .join(study.as_str())
        .join(format!("{}.dcm", instance.as_str()));
    let path = data_dir.join(&relative);
    let folder = path.parent().expect("a result path has a folder");
    fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;

    let temporary = folder.join(format!(".{}.tmp", instance.as_str()));
    let mut file =
        File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(part10)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    drop(file);
    fs::rename(&temporary, &path).with_context(|| format!("renaming to {}", path.display()))?;
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", folder.display()))?;
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_below_results_and_replaces_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let relative = write_result(dir.path(), "1.2.3", "1.2.3.4", b"one").unwrap();
        assert_eq!(relative, Path::new("results/1.2.3/1.2.3.4.dcm"));
        write_result(dir.path(), "1.2.3", "1.2.3.4", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join(&relative)).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path().join("results/1.2.3"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }

    #[test]
    fn invalid_uids_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_result(dir.path(), "../../etc", "1.2", b"x").is_err());
        assert!(write_result(dir.path(), "1.2", "1/2", b"x").is_err());
        assert!(!dir.path().join(RESULTS_DIR).join("1.2").exists());
    }
}
