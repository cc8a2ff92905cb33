//! `chestnode users …`: the browser annotator's accounts (add, list,
//! remove, assign to cohorts). Parsing and printing only; the password is
//! hashed here (Argon2id) so that only the hash reaches the server, and
//! the work is done through the running server's control socket when one
//! runs (`chestnode::status::users`).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use chestnode::research;
use chestnode::status::{MIN_PASSWORD_LEN, Role, UsersReply, UsersRequest, hash_password};

use super::ConfigArgs;

#[derive(Args)]
pub struct UsersArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Who acts, for the audit log [default: the OS user]
    #[arg(long, global = true, value_name = "NAME")]
    operator: Option<String>,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add an account; the password (at least 12 characters) is read from
    /// --password-file, else from the first line of standard input.
    Add {
        name: String,
        /// annotator (assigned cohorts only), coordinator or admin (all cohorts)
        #[arg(long)]
        role: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List the accounts with their roles and cohorts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an account (its sessions end at their next request).
    Remove { name: String },
    /// Let an annotator see a cohort.
    Assign { name: String, cohort: String },
    /// Take a cohort away from an annotator.
    Unassign { name: String, cohort: String },
}

/// The password: the file's first line, or standard input's.
fn read_password(file: Option<&PathBuf>) -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    match file {
        Some(path) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
            line.push_str(text.lines().next().unwrap_or(""));
        }
        None => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
        }
    }
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    anyhow::ensure!(
        trimmed.chars().count() >= MIN_PASSWORD_LEN,
        "a password needs at least {MIN_PASSWORD_LEN} characters"
    );
    Ok(trimmed)
}

pub fn users(args: UsersArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let operator = research::operator(args.operator.as_deref());
    let (request, json) = match args.command {
        UsersCommand::Add {
            name,
            role,
            password_file,
        } => {
            let role = Role::parse(&role)?;
            let password = read_password(password_file.as_ref())?;
            let request = UsersRequest::Add {
                name,
                role,
                password_hash: hash_password(&password)?,
                operator,
            };
            (request, false)
        }
        UsersCommand::List { json } => (UsersRequest::List, json),
        UsersCommand::Remove { name } => (UsersRequest::Remove { name, operator }, false),
        UsersCommand::Assign { name, cohort } => (
            UsersRequest::Assign {
                name,
                cohort,
                operator,
            },
            false,
        ),
        UsersCommand::Unassign { name, cohort } => (
            UsersRequest::Unassign {
                name,
                cohort,
                operator,
            },
            false,
        ),
    };
    match runtime.block_on(chestnode::status::users(&config.node.data_dir, request))? {
        UsersReply::Done { message } => println!("{message}"),
        UsersReply::Users { users } if json => {
            println!("{}", serde_json::to_string_pretty(&users)?)
        }
        UsersReply::Users { users } => {
            if users.is_empty() {
                println!("no users");
            }
            for user in users {
                println!(
                    "{} ({}) cohorts: [{}]",
                    user.name,
                    user.role.name(),
                    user.cohorts.join(", ")
                );
            }
        }
        UsersReply::Failed { error } => anyhow::bail!("{error}"),
    }
    Ok(())
}
