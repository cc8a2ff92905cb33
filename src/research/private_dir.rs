//! `DATA_DIR/research/`: the folder that holds the pseudonym vault, the
//! audit log and the staging area, one folder per cohort named only from a
//! validated cohort name, and nothing of the research wing is written
//! elsewhere by the node. Only the node's user may enter it (mode 0700),
//! whatever the umask, because what it holds links research IDs back to
//! patients.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Name of the folder below the data directory.
pub(crate) const RESEARCH_DIR: &str = "research";

/// `data_dir/research`, without touching the disk.
pub(crate) fn research_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(RESEARCH_DIR)
}

/// Creates `data_dir/research` (mode 0700) if it is missing, and narrows
/// an existing one to 0700; returns its path.
pub(crate) fn ensure_research_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = research_dir(data_dir);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mode = fs::metadata(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to mode 0700", dir.display()))?;
    }
    Ok(dir)
}

/// `DATA_DIR/research/staging/COHORT`, for a valid cohort name only.
pub(crate) fn staging_dir(data_dir: &Path, cohort: &str) -> anyhow::Result<PathBuf> {
    super::cohort::validate_name(cohort)?;
    Ok(research_dir(data_dir).join("staging").join(cohort))
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_stays_inside_the_data_directory() {
        let data = Path::new("/data");
        assert_eq!(
            staging_dir(data, "tb-2026").unwrap(),
            Path::new("/data/research/staging/tb-2026")
        );
        for bad in ["..", "../x", "a/b", "", ".hidden", "a\0b"] {
            assert!(staging_dir(data, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn creates_and_narrows_to_0700() {
        let data = tempfile::tempdir().unwrap();
        let dir = ensure_research_dir(data.path()).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_research_dir(data.path()).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
