//! The `users` tree: the annotator's accounts (name, role, password hash,
//! assigned cohorts), one record per user name.
//!
//! The ledger stores each account as the annotator's own JSON and knows
//! only the key, the user name; what a record means (roles, Argon2id
//! hashes) is `annotator`'s business, so the ledger stays the one owner of
//! sled without learning about logins.

use super::Ledger;

/// The users tree.
pub struct Users {
    ledger: Ledger,
}

impl Users {
    pub(super) fn new(ledger: Ledger) -> Users {
        Users { ledger }
    }

    /// The stored account of `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.ledger.users.get(name.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Stores a new account; false (and nothing changed) when the name is
    /// taken.
    pub fn insert_new(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<bool> {
        let swapped = self.ledger.users.compare_and_swap(
            name.as_bytes(),
            None as Option<&[u8]>,
            Some(bytes),
        )?;
        self.ledger.flush()?;
        Ok(swapped.is_ok())
    }

    /// Replaces an existing account's record with `change(old)`, atomically;
    /// false when there is no such account.
    pub fn update(
        &self,
        name: &str,
        mut change: impl FnMut(&[u8]) -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<bool> {
        let tree = &self.ledger.users;
        loop {
            let Some(old) = tree.get(name.as_bytes())? else {
                return Ok(false);
            };
            let new = change(&old)?;
            if tree
                .compare_and_swap(name.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                self.ledger.flush()?;
                return Ok(true);
            }
        }
    }

    /// Removes an account; false when there was none.
    pub fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let removed = self.ledger.users.remove(name.as_bytes())?.is_some();
        self.ledger.flush()?;
        Ok(removed)
    }

    /// Every account, by name.
    pub fn all(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.ledger
            .users
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), value.to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_added_once_updated_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let users = ledger.users();
        assert!(users.insert_new("ann", b"1".to_vec()).unwrap());
        assert!(!users.insert_new("ann", b"2".to_vec()).unwrap());
        assert_eq!(users.get("ann").unwrap().unwrap(), b"1");
        assert!(users.update("ann", |old| Ok([old, b"x"].concat())).unwrap());
        assert_eq!(users.get("ann").unwrap().unwrap(), b"1x");
        assert!(!users.update("bob", |_| Ok(Vec::new())).unwrap());
        assert_eq!(users.all().unwrap().len(), 1);
        assert!(users.remove("ann").unwrap());
        assert!(!users.remove("ann").unwrap());
        assert!(users.get("ann").unwrap().is_none());
    }
}
