//! Annotator accounts: who may log in, with which role, to which cohorts;
//! and `chestnode users …` as requests a running server answers over its
//! control socket (or the command runs itself when no server holds the
//! index).
//!
//! Passwords are hashed with Argon2id (PHC string) by the command, before
//! anything is sent: neither the socket nor the index ever sees one.

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::research::{AuditLog, AuditRecord};

/// The shortest password `users add` accepts.
pub const MIN_PASSWORD_LEN: usize = 12;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees and annotates only the cohorts assigned to them.
    Annotator,
    /// Sees every cohort.
    Coordinator,
    /// Sees every cohort.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> anyhow::Result<Role> {
        match text {
            "annotator" => Ok(Role::Annotator),
            "coordinator" => Ok(Role::Coordinator),
            "admin" => Ok(Role::Admin),
            other => anyhow::bail!("unknown role {other:?}: annotator, coordinator or admin"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
        }
    }

    /// Whether the role sees every cohort, assigned or not.
    pub fn sees_all_cohorts(self) -> bool {
        !matches!(self, Role::Annotator)
    }
}

/// One stored account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    /// Argon2id, PHC string format.
    pub password_hash: String,
    /// Cohort names this user is assigned to, sorted.
    pub cohorts: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// An account as `users list` shows it: no hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub role: Role,
    pub cohorts: Vec<String>,
    pub created_at: u64,
}

/// A `chestnode users` command that needs the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "users", rename_all = "kebab-case")]
pub enum UsersRequest {
    Add {
        name: String,
        role: Role,
        /// Already hashed by the command ([`hash_password`]).
        password_hash: String,
        operator: String,
    },
    List,
    Remove {
        name: String,
        operator: String,
    },
    Assign {
        name: String,
        cohort: String,
        operator: String,
    },
    Unassign {
        name: String,
        cohort: String,
        operator: String,
    },
}

/// The answer to a [`UsersRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum UsersReply {
    Done { message: String },
    Users { users: Vec<UserSummary> },
    Failed { error: String },
}

/// Checks a user name: 1–64 characters of letters, digits, `.`, `_`, `-`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "a user name is 1-64 letters, digits, '.', '_' or '-'"
    );
    Ok(())
}

/// Hashes a password with Argon2id and a random salt (PHC string);
/// refuses one shorter than [`MIN_PASSWORD_LEN`] characters.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD_LEN,
        "a password needs at least {MIN_PASSWORD_LEN} characters"
    );
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Reads one account.
pub fn load_user(ledger: &Ledger, name: &str) -> anyhow::Result<Option<UserRecord>> {
    match ledger.users().get(name)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Runs a request; errors come back as [`UsersReply::Failed`].
pub fn execute(ledger: &Ledger, data_dir: &Path, request: UsersRequest) -> UsersReply {
    match run(ledger, data_dir, request) {
        Ok(reply) => reply,
        Err(error) => UsersReply::Failed {
            error: format!("{error:#}"),
        },
    }
}

fn run(ledger: &Ledger, data_dir: &Path, request: UsersRequest) -> anyhow::Result<UsersReply> {
    let users = ledger.users();
    let audit = |operator: &str, action: &str, subject: &str, details: serde_json::Value| {
        AuditLog::open(data_dir)?.append(AuditRecord {
            operator: operator.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            details,
            ..AuditRecord::default()
        })
    };
    Ok(match request {
        UsersRequest::Add {
            name,
            role,
            password_hash,
            operator,
        } => {
            validate_name(&name)?;
            anyhow::ensure!(
                password_hash.starts_with("$argon2id$"),
                "the password hash is not Argon2id"
            );
            let record = UserRecord {
                name: name.clone(),
                role,
                password_hash,
                cohorts: Vec::new(),
                created_at: crate::clock::unix_now(),
            };
            anyhow::ensure!(
                users.insert_new(&name, serde_json::to_vec(&record)?)?,
                "user {name} exists already"
            );
            audit(
                &operator,
                "user.add",
                &name,
                serde_json::json!({ "role": role.name() }),
            )?;
            UsersReply::Done {
                message: format!("user {name} added ({})", role.name()),
            }
        }
        UsersRequest::List => UsersReply::Users {
            users: users
                .all()?
                .into_iter()
                .map(|(_, bytes)| {
                    let record: UserRecord = serde_json::from_slice(&bytes)?;
                    Ok(UserSummary {
                        name: record.name,
                        role: record.role,
                        cohorts: record.cohorts,
                        created_at: record.created_at,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        },
        UsersRequest::Remove { name, operator } => {
            anyhow::ensure!(users.remove(&name)?, "no user {name}");
            audit(&operator, "user.remove", &name, serde_json::Value::Null)?;
            UsersReply::Done {
                message: format!("user {name} removed"),
            }
        }
        UsersRequest::Assign {
            name,
            cohort,
            operator,
        } => {
            crate::research::cohort::validate_name(&cohort)?;
            anyhow::ensure!(
                ledger.cohorts().latest(&cohort)?.is_some(),
                "no cohort {cohort}"
            );
            change_cohorts(ledger, &name, |cohorts| {
                if !cohorts.contains(&cohort) {
                    cohorts.push(cohort.clone());
                    cohorts.sort();
                }
            })?;
            audit(
                &operator,
                "user.assign",
                &name,
                serde_json::json!({ "cohort": cohort }),
            )?;
            UsersReply::Done {
                message: format!("user {name} assigned to cohort {cohort}"),
            }
        }
        UsersRequest::Unassign {
            name,
            cohort,
            operator,
        } => {
            change_cohorts(ledger, &name, |cohorts| cohorts.retain(|c| *c != cohort))?;
            audit(
                &operator,
                "user.unassign",
                &name,
                serde_json::json!({ "cohort": cohort }),
            )?;
            UsersReply::Done {
                message: format!("user {name} no longer assigned to cohort {cohort}"),
            }
        }
    })
}

fn change_cohorts(
    ledger: &Ledger,
    name: &str,
    change: impl Fn(&mut Vec<String>),
) -> anyhow::Result<()> {
    let found = ledger.users().update(name, |old| {
        let mut record: UserRecord = serde_json::from_slice(old)?;
        change(&mut record.cohorts);
        Ok(serde_json::to_vec(&record)?)
    })?;
    anyhow::ensure!(found, "no user {name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_and_short_ones_are_refused() {
        assert!(hash_password("short").is_err());
        let hash = hash_password("a long enough secret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("a long enough secret", &hash));
        assert!(!verify_password("a long enough secreT", &hash));
    }

    #[test]
    fn users_are_added_listed_and_removed_with_audit_entries() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let add = UsersRequest::Add {
            name: "ann".into(),
            role: Role::Annotator,
            password_hash: hash_password("a long enough secret").unwrap(),
            operator: "op".into(),
        };
        assert!(matches!(
            execute(&ledger, dir.path(), add.clone()),
            UsersReply::Done { .. }
        ));
        assert!(matches!(
            execute(&ledger, dir.path(), add),
            UsersReply::Failed { .. }
        ));
        let assign = UsersRequest::Assign {
            name: "ann".into(),
            cohort: "nope".into(),
            operator: "op".into(),
        };
        assert!(matches!(
            execute(&ledger, dir.path(), assign),
            UsersReply::Failed { .. }
        ));
        let UsersReply::Users { users } = execute(&ledger, dir.path(), UsersRequest::List) else {
            panic!()
        };
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, Role::Annotator);
        let remove = UsersRequest::Remove {
            name: "ann".into(),
            operator: "op".into(),
        };
        assert!(matches!(
            execute(&ledger, dir.path(), remove),
            UsersReply::Done { .. }
        ));
        let entries = AuditLog::open(dir.path()).unwrap().entries().unwrap();
        let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.add", "user.remove"]);
    }
}
