//! The `cohorts` tree: the research wing's cohorts, each a list of
//! versions that are never rewritten in place, only added to (a new
//! selection) or marked (exported, destroyed).
//!
//! The ledger stores a version as the research wing's own JSON; it knows
//! only the key, `name \0 version` with the version big-endian, so a
//! cohort's versions are a prefix scan in order.

use super::Ledger;

/// The cohorts tree.
pub struct Cohorts {
    ledger: Ledger,
}

fn version_key(name: &str, version: u32) -> Vec<u8> {
    let mut key = prefix(name);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

fn prefix(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key
}

impl Cohorts {
    pub(super) fn new(ledger: Ledger) -> Cohorts {
        Cohorts { ledger }
    }

    /// Stores `record(version)` as the cohort's next version and returns the
    /// version number (1 for a new cohort). The number is chosen inside
    /// the transaction, so two creators never take the same one.
    pub fn add_version(
        &self,
        name: &str,
        mut record: impl FnMut(u32) -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<u32> {
        let tree = &self.ledger.cohorts;
        loop {
            let version = self.latest(name)?.map(|(v, _)| v + 1).unwrap_or(1);
            let bytes = record(version)?;
            let swapped = tree.compare_and_swap(
                version_key(name, version),
                None as Option<&[u8]>,
                Some(bytes),
            )?;
            if swapped.is_ok() {
                self.ledger.flush()?;
                return Ok(version);
            }
        }
    }

    /// Replaces a stored version (to mark it exported or destroyed).
    pub fn update(&self, name: &str, version: u32, bytes: Vec<u8>) -> anyhow::Result<()> {
        let key = version_key(name, version);
        anyhow::ensure!(
            self.ledger.cohorts.contains_key(&key)?,
            "cohort {name} has no version {version}"
        );
        self.ledger.cohorts.insert(key, bytes)?;
        self.ledger.flush()
    }

    /// One version.
    pub fn get(&self, name: &str, version: u32) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .ledger
            .cohorts
            .get(version_key(name, version))?
            .map(|bytes| bytes.to_vec()))
    }

    /// The newest version of a cohort, with its number.
    pub fn latest(&self, name: &str) -> anyhow::Result<Option<(u32, Vec<u8>)>> {
        let prefix = prefix(name);
        match self.ledger.cohorts.scan_prefix(&prefix).next_back() {
            Some(entry) => {
                let (key, value) = entry?;
                Ok(Some((
                    decode_version(&key[prefix.len()..])?,
                    value.to_vec(),
                )))
            }
            None => Ok(None),
        }
    }

    /// Every version of a cohort, oldest first.
    pub fn versions(&self, name: &str) -> anyhow::Result<Vec<(u32, Vec<u8>)>> {
        let prefix = prefix(name);
        self.ledger
            .cohorts
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((decode_version(&key[prefix.len()..])?, value.to_vec()))
            })
            .collect()
    }

    /// The names of every cohort.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for entry in self.ledger.cohorts.iter() {
            let (key, _) = entry?;
            let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
            let name = String::from_utf8_lossy(&key[..end]).into_owned();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

fn decode_version(bytes: &[u8]) -> anyhow::Result<u32> {
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("corrupt cohort key"))?;
    Ok(u32::from_be_bytes(bytes))
}
