//! `sentralbord directory ...`: a tenant's directory of contacts (names for calling
//! numbers), with CSV import.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{tenant_by_name, with_store, write_table, CliError};
use crate::store::{Entity, NewContact, StoreError, MAX_CSV_BYTES};

/// `sentralbord directory ...`: manage a tenant's directory of contacts.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DirectoryCommand {
    /// Import contacts from a CSV file.
    ///
    /// The file is UTF-8 with a header row `number,first_name,last_name,company,department`
    /// (any order, an optional `note` column, `,` or `;` separated). Numbers must be in
    /// E.164 form. A contact with the same number is updated; columns the file lacks
    /// keep their values. Bad lines are listed and the exit status is 1; the other lines
    /// are imported (in one transaction).
    Import {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The CSV file.
        file: PathBuf,
    },
    /// List a tenant's contacts.
    List {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
    },
    /// Add one contact.
    Add(DirectoryAddArgs),
    /// Remove a contact.
    Remove {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The contact's number in E.164 form.
        number: String,
    },
}

/// Arguments of `sentralbord directory add`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DirectoryAddArgs {
    /// The tenant's name.
    #[arg(long)]
    pub tenant: String,
    /// The number in E.164 form, e.g. +4790000000.
    #[arg(long)]
    pub number: String,
    /// First name.
    #[arg(long)]
    pub first: Option<String>,
    /// Last name.
    #[arg(long)]
    pub last: Option<String>,
    /// Company (shown when there is no first or last name).
    #[arg(long)]
    pub company: Option<String>,
    /// Department.
    #[arg(long)]
    pub department: Option<String>,
    /// A note for the operators.
    #[arg(long)]
    pub note: Option<String>,
}

/// Runs a directory command against the database at `db_path`, printing to stdout.
pub fn run_directory(cmd: DirectoryCommand, db_path: &Path) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_directory_with(cmd, db_path, &mut out)
}

/// Reads a CSV file as UTF-8, refusing files larger than the store accepts before
/// reading them whole.
fn read_csv(path: &Path) -> Result<String, CliError> {
    let read_err = |source| CliError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    // One byte more than the limit tells "too large" from "exactly at the limit".
    file.take(MAX_CSV_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_CSV_BYTES {
        return Err(CliError::FileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_CSV_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| CliError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Runs a directory command, writing results to `out`.
pub fn run_directory_with(
    cmd: DirectoryCommand,
    db_path: &Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // Read the file before opening the store, so a wrong path touches nothing.
    let csv = match &cmd {
        DirectoryCommand::Import { file, .. } => Some(read_csv(file)?),
        _ => None,
    };
    with_store(db_path, |h| match cmd {
        DirectoryCommand::Import { tenant, .. } => {
            let t = tenant_by_name(h, &tenant)?;
            let report = h
                .import_contacts_csv(t.id, csv.unwrap_or_default())
                .wait()?;
            writeln!(
                out,
                "imported into tenant {:?}: {} added, {} updated, {} rejected",
                t.name,
                report.added,
                report.updated,
                report.rejected.len()
            )
            .map_err(CliError::Output)?;
            for (line, reason) in &report.rejected {
                writeln!(out, "line {line}: {reason}").map_err(CliError::Output)?;
            }
            if report.rejected.is_empty() {
                Ok(())
            } else {
                // The good lines are in; the exit status still tells a script to look.
                Err(CliError::LinesRejected(report.rejected.len()))
            }
        }
        DirectoryCommand::List { tenant } => {
            let t = tenant_by_name(h, &tenant)?;
            let contacts = h.list_contacts(t.id).wait()?;
            if contacts.is_empty() {
                return writeln!(out, "tenant {:?} has no contacts", t.name)
                    .map_err(CliError::Output);
            }
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            let rows = contacts
                .into_iter()
                .map(|c| {
                    vec![
                        c.number,
                        dash(c.first_name),
                        dash(c.last_name),
                        dash(c.company),
                        dash(c.department),
                    ]
                })
                .collect();
            write_table(
                out,
                &["NUMBER", "FIRST NAME", "LAST NAME", "COMPANY", "DEPARTMENT"],
                rows,
            )
        }
        DirectoryCommand::Add(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let number = a.number.clone();
            h.add_contact(NewContact {
                tenant: t.id,
                number: a.number,
                first_name: a.first,
                last_name: a.last,
                company: a.company,
                department: a.department,
                note: a.note,
            })
            .wait()?;
            writeln!(out, "contact {number} added to tenant {:?}", t.name).map_err(CliError::Output)
        }
        DirectoryCommand::Remove { tenant, number } => {
            let t = tenant_by_name(h, &tenant)?;
            match h.remove_contact(t.id, &number).wait() {
                Err(StoreError::NotFound(Entity::Contact)) => Err(CliError::ContactNotFound {
                    tenant: t.name,
                    number,
                }),
                other => {
                    other?;
                    writeln!(out, "contact {number} removed from tenant {:?}", t.name)
                        .map_err(CliError::Output)
                }
            }
        }
    })
}
