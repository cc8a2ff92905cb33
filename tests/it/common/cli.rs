//! Running programs from tests: chestnode's own command line (the binary
//! cargo built for this test run) and the outside tools that read what it
//! writes.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use super::combined_output;

/// `chestnode ARGS`, whatever its outcome.
pub fn chestnode<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(args)
        .output()
        .expect("chestnode runs")
}

/// `chestnode ARGS`, which must succeed: panics with its output otherwise.
pub fn chestnode_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let output = chestnode(&args);
    assert!(
        output.status.success(),
        "chestnode {:?} failed: {}\n{}",
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        output.status,
        combined_output(&output)
    );
    output
}

/// A tool (`dciodvfy`, `dcmdump`, `dsrdump`, …) run on one file: its
/// output, and stdout and stderr together as text, which is also printed
/// for the test's log.
pub fn tool_output(tool: &str, file: &Path) -> (Output, String) {
    let output = Command::new(tool)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed: {e}"));
    let text = combined_output(&output);
    println!("--- {tool} {}\n{text}", file.display());
    (output, text)
}

/// dciodvfy's error lines for a file, and its whole output.
pub fn dciodvfy_errors(file: &Path) -> (Vec<String>, String) {
    let (_, text) = tool_output("dciodvfy", file);
    let errors = text
        .lines()
        .filter(|line| line.starts_with("Error"))
        .map(str::to_owned)
        .collect();
    (errors, text)
}
