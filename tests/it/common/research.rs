//! What the research tests share: input images made with DCMTK's
//! `dcmodify` (a patient, dates and UIDs of the test's choosing), and
//! `chestnode research …` run against a node's data directory with its
//! configuration and the vault passphrase.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::cli::chestnode;
use super::combined_output;

/// A copy of `source` at `out` with the given attributes (`(gggg,eeee)`,
/// value) set by `dcmodify`.
pub fn dcmodify_copy(source: &Path, out: &Path, settings: &[(&str, &str)]) -> PathBuf {
    std::fs::copy(source, out).unwrap();
    let mut command = Command::new("dcmodify");
    command.arg("-nb").arg("-ie");
    for (tag, value) in settings {
        command.arg("-i").arg(format!("{tag}={value}"));
    }
    let output = command.arg(out).output().expect("dcmodify runs");
    assert!(output.status.success(), "{}", combined_output(&output));
    out.to_path_buf()
}

/// `chestnode research` for one data directory: the configuration is the
/// node's (`chestnode.toml` beside the data directory), the operator
/// "test-coordinator".
pub struct ResearchCli {
    data: PathBuf,
    passphrase: PathBuf,
}

impl ResearchCli {
    /// With the vault passphrase in the file `passphrase`.
    pub fn new(data: &Path, passphrase: &Path) -> ResearchCli {
        ResearchCli {
            data: data.to_path_buf(),
            passphrase: passphrase.to_path_buf(),
        }
    }

    /// `chestnode research ARGS`, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "research".to_owned(),
            "--config".into(),
            self.data
                .parent()
                .unwrap()
                .join("chestnode.toml")
                .display()
                .to_string(),
            "--data-dir".into(),
            self.data.display().to_string(),
            "--vault-passphrase-file".into(),
            self.passphrase.display().to_string(),
            "--operator".into(),
            "test-coordinator".into(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        chestnode(&all)
    }

    /// Must succeed; its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = combined_output(&output);
        assert!(output.status.success(), "research {args:?} failed:\n{text}");
        text
    }

    /// Must fail; its output.
    pub fn err(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = combined_output(&output);
        assert!(
            !output.status.success(),
            "research {args:?} should fail:\n{text}"
        );
        text
    }
}

/// Days since 1970-01-01 of a date written `YYYYMMDD` or `YYYY-MM-DD`.
pub fn day_number(date: &str) -> i64 {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y%m%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d"))
        .unwrap_or_else(|_| panic!("not a date: {date:?}"));
    (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
}
