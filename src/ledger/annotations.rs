//! The `annotations` tree: doctors' annotations of stored images, kept as
//! versions that are never rewritten (a correction or a deletion is a new
//! version), so every label a model was trained on can be traced.
//!
//! The ledger stores the research wing's JSON and knows only the key,
//! `SOP Instance UID \0 annotation id \0 version` with the version
//! big-endian: an image's annotations are a prefix scan, in order.

use super::Ledger;

/// The annotations tree.
pub struct Annotations {
    ledger: Ledger,
}

/// One stored version: (SOP Instance UID, annotation id, version, record).
pub type StoredAnnotation = (String, String, u32, Vec<u8>);

fn key(sop: &str, id: &str, version: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(sop.len() + id.len() + 6);
    key.extend_from_slice(sop.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

fn decode(key: &[u8], value: &[u8]) -> anyhow::Result<StoredAnnotation> {
    let corrupt = || anyhow::anyhow!("corrupt annotation key");
    let first = key.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
    let rest = &key[first + 1..];
    anyhow::ensure!(rest.len() >= 5, "corrupt annotation key");
    let (id, version) = rest.split_at(rest.len() - 5);
    let version = u32::from_be_bytes(version[1..].try_into().map_err(|_| corrupt())?);
    Ok((
        String::from_utf8_lossy(&key[..first]).into_owned(),
        String::from_utf8_lossy(id).into_owned(),
        version,
        value.to_vec(),
    ))
}

impl Annotations {
    pub(super) fn new(ledger: Ledger) -> Annotations {
        Annotations { ledger }
    }

    /// The next version number of an annotation (1 for a new one).
    pub fn next_version(&self, sop: &str, id: &str) -> anyhow::Result<u32> {
        let mut prefix = key(sop, id, 0);
        prefix.truncate(prefix.len() - 4);
        Ok(
            match self.ledger.annotations.scan_prefix(&prefix).next_back() {
                Some(entry) => decode(&entry?.0, &[])?.2 + 1,
                None => 1,
            },
        )
    }

    /// Stores several versions at once, all or none, then flushes. Each
    /// must be new: a version already stored aborts the whole batch.
    pub fn insert_all(&self, records: &[(String, String, u32, Vec<u8>)]) -> anyhow::Result<()> {
        use sled::transaction::ConflictableTransactionError;
        let outcome = self.ledger.annotations.transaction(|tree| {
            for (sop, id, version, bytes) in records {
                let k = key(sop, id, *version);
                if tree.get(&k)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(format!(
                        "annotation {id} version {version} is already stored"
                    )));
                }
                tree.insert(k, bytes.as_slice())?;
            }
            Ok(())
        });
        match outcome {
            Ok(()) => self.ledger.flush(),
            Err(sled::transaction::TransactionError::Abort(message)) => anyhow::bail!(message),
            Err(sled::transaction::TransactionError::Storage(error)) => Err(error.into()),
        }
    }

    /// Every version of every annotation of an image, in key order.
    pub fn for_image(&self, sop: &str) -> anyhow::Result<Vec<StoredAnnotation>> {
        let mut prefix = sop.as_bytes().to_vec();
        prefix.push(0);
        self.ledger
            .annotations
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Every version of every annotation.
    pub fn all(&self) -> anyhow::Result<Vec<StoredAnnotation>> {
        self.ledger
            .annotations
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }
}
