//! Where the research wing keeps its files inside the data directory, and
//! nowhere else: `research/` holds the vault, the audit log and the
//! staging area, one folder per cohort, named only from validated cohort
//! names.

use std::path::{Path, PathBuf};

use super::cohort::validate_name;

/// `DATA_DIR/research`.
pub fn research_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("research")
}

/// `DATA_DIR/research/staging/COHORT`, for a valid cohort name only.
pub fn staging_dir(data_dir: &Path, cohort: &str) -> anyhow::Result<PathBuf> {
    validate_name(cohort)?;
    Ok(research_dir(data_dir).join("staging").join(cohort))
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
}
