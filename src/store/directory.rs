//! The SQL of caller-ID enrichment: tenants' directories of contacts (with CSV import),
//! the local name lookup, and the cache of the external directory service's answers.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::csv::{self, ContactRow};
use super::model::{
    contact_display_name, CachedLookup, Contact, ContactId, ImportReport, LocalName, NewContact,
    RejectReason, Source, TenantId, UserId,
};
use super::repo::{constraint, tenant_exists};
use super::validate;
use super::{Entity, Field, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Largest CSV import accepted (bytes): a directory of a few hundred thousand contacts.
pub const MAX_CSV_BYTES: usize = 64 * 1024 * 1024;
/// Longest name kept from the external directory service (characters).
pub const MAX_CACHED_NAME_LEN: usize = 100;
/// Longest address kept from the external directory service (characters).
pub const MAX_CACHED_ADDRESS_LEN: usize = 200;

// ---- contacts ----

/// Checks a contact and returns it with empty strings turned into `None`.
fn normalized(c: &NewContact) -> Result<NewContact> {
    fn opt(field: Field, v: &Option<String>) -> Result<Option<String>> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => {
                if field == Field::Note {
                    validate::note(s)?;
                } else {
                    validate::display_name(field, s)?;
                }
                Ok(Some(s.to_owned()))
            }
        }
    }
    validate::e164(Field::ContactNumber, &c.number)?;
    let out = NewContact {
        tenant: c.tenant,
        number: c.number.clone(),
        first_name: opt(Field::FirstName, &c.first_name)?,
        last_name: opt(Field::LastName, &c.last_name)?,
        company: opt(Field::Company, &c.company)?,
        department: opt(Field::Department, &c.department)?,
        note: opt(Field::Note, &c.note)?,
    };
    if out.first_name.is_none() && out.last_name.is_none() && out.company.is_none() {
        // Without any of these there is no name to show for the number.
        return Err(StoreError::Invalid {
            field: Field::FirstName,
            reason: "a contact needs a first name, last name or company",
        });
    }
    Ok(out)
}

fn insert_contact(conn: &Connection, c: &NewContact) -> Result<ContactId> {
    conn.prepare_cached(
        "INSERT INTO directory_contacts
             (tenant_id, number, first_name, last_name, company, department, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        c.tenant.0,
        c.number,
        c.first_name,
        c.last_name,
        c.company,
        c.department,
        c.note
    ])
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    Ok(ContactId(conn.last_insert_rowid()))
}

/// Adds a contact to a tenant's directory ([`StoreError::Duplicate`] if the tenant's
/// directory already has the number).
pub(crate) fn add_contact(conn: &Connection, c: &NewContact) -> Result<ContactId> {
    insert_contact(conn, &normalized(c)?)
}

const CONTACT_COLUMNS: &str = "id, tenant_id, number, first_name, last_name, company, \
                               department, note, created_at FROM directory_contacts";

fn contact_from_row(r: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: ContactId(r.get(0)?),
        tenant_id: TenantId(r.get(1)?),
        number: r.get(2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        company: r.get(5)?,
        department: r.get(6)?,
        note: r.get(7)?,
        created_at: r.get(8)?,
    })
}

fn find_contact(conn: &Connection, tenant: TenantId, number: &str) -> Result<Option<Contact>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONTACT_COLUMNS} WHERE tenant_id = ?1 AND number = ?2"
        ))?
        .query_row(params![tenant.0, number], contact_from_row)
        .optional()?)
}

/// Lists a tenant's contacts by last name (or company), first name, number.
pub(crate) fn list_contacts(conn: &Connection, tenant: TenantId) -> Result<Vec<Contact>> {
    if !tenant_exists(conn, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTACT_COLUMNS} WHERE tenant_id = ?1
         ORDER BY coalesce(last_name, company, first_name) COLLATE NOCASE,
                  first_name COLLATE NOCASE, number"
    ))?;
    let rows = stmt.query_map([tenant.0], contact_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Removes a contact ([`StoreError::NotFound`] if the tenant's directory lacks it).
pub(crate) fn remove_contact(conn: &Connection, tenant: TenantId, number: &str) -> Result<()> {
    validate::e164(Field::ContactNumber, number)?;
    let n = conn.execute(
        "DELETE FROM directory_contacts WHERE tenant_id = ?1 AND number = ?2",
        params![tenant.0, number],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Contact));
    }
    Ok(())
}

/// Imports a CSV directory into a tenant in one transaction: rows are inserted, or
/// update the contact with the same number (columns the file lacks keep their stored
/// values). Bad rows are reported, not fatal; an unusable header fails the import.
pub(crate) fn import_contacts_csv(
    conn: &mut Connection,
    tenant: TenantId,
    text: &str,
) -> Result<ImportReport> {
    if text.len() > MAX_CSV_BYTES {
        return Err(StoreError::Invalid {
            field: Field::Csv,
            reason: "must be at most 64 MiB",
        });
    }
    let rows = csv::read_contacts(text)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !tenant_exists(&tx, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let mut report = ImportReport::default();
    // Number -> the line that applied it; a second line with it is a data error.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(rejected) => {
                report.rejected.push(rejected);
                continue;
            }
        };
        let line = row.line;
        if let Some(&first_line) = seen.get(&row.number) {
            report
                .rejected
                .push((line, RejectReason::DuplicateInFile { first_line }));
            continue;
        }
        match import_row(&tx, tenant, row) {
            Ok((number, added)) => {
                if added {
                    report.added += 1;
                } else {
                    report.updated += 1;
                }
                seen.insert(number, line);
            }
            Err(StoreError::Invalid { field, reason }) => report
                .rejected
                .push((line, RejectReason::Invalid { field, reason })),
            Err(e) => return Err(e),
        }
    }
    tx.commit()?;
    Ok(report)
}

/// Applies one row; returns its number and whether it was added (else updated).
fn import_row(conn: &Connection, tenant: TenantId, row: ContactRow) -> Result<(String, bool)> {
    validate::e164(Field::ContactNumber, &row.number)?;
    let existing = find_contact(conn, tenant, &row.number)?;
    let keep = |cell: Option<Option<String>>, stored: Option<&Option<String>>| match cell {
        Some(v) => v,
        None => stored.cloned().flatten(),
    };
    let merged = NewContact {
        tenant,
        first_name: keep(row.first_name, existing.as_ref().map(|c| &c.first_name)),
        last_name: keep(row.last_name, existing.as_ref().map(|c| &c.last_name)),
        company: keep(row.company, existing.as_ref().map(|c| &c.company)),
        department: keep(row.department, existing.as_ref().map(|c| &c.department)),
        note: keep(row.note, existing.as_ref().map(|c| &c.note)),
        number: row.number,
    };
    let c = normalized(&merged)?;
    match existing {
        None => {
            insert_contact(conn, &c)?;
            Ok((c.number, true))
        }
        Some(old) => {
            conn.prepare_cached(
                "UPDATE directory_contacts SET first_name = ?2, last_name = ?3, company = ?4,
                     department = ?5, note = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                old.id.0,
                c.first_name,
                c.last_name,
                c.company,
                c.department,
                c.note
            ])?;
            Ok((c.number, false))
        }
    }
}

// ---- local caller lookup ----

/// Finds a name for `number` in the tenant's own data: first a user of the tenant whose
/// mobile it is, then the tenant's directory. A number that is not E.164 finds nothing.
pub(crate) fn lookup_local_name(
    conn: &Connection,
    tenant: TenantId,
    number: &str,
) -> Result<Option<LocalName>> {
    // Users have no link to tenant numbers of kind 'user' yet, so mobiles are what
    // identifies a user by number.
    let user: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, name FROM users WHERE tenant_id = ?1 AND mobile = ?2")?
        .query_row(params![tenant.0, number], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, name)) = user {
        return Ok(Some(LocalName {
            name,
            source: Source::User,
            user_id: Some(UserId(id)),
        }));
    }
    let contact: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT first_name, last_name, company FROM directory_contacts
             WHERE tenant_id = ?1 AND number = ?2",
        )?
        .query_row(params![tenant.0, number], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(contact.and_then(|(first, last, company)| {
        contact_display_name(first.as_deref(), last.as_deref(), company.as_deref()).map(|name| {
            LocalName {
                name,
                source: Source::Contact,
                user_id: None,
            }
        })
    }))
}

// ---- external lookup cache ----

/// Returns the cached answer for `number` unless it expired at or before `now_unix`.
pub(crate) fn cache_get(
    conn: &Connection,
    number: &str,
    now_unix: i64,
) -> Result<Option<CachedLookup>> {
    Ok(conn
        .prepare_cached(
            "SELECT name, address, found FROM lookup_cache
             WHERE number = ?1 AND expires_at > ?2",
        )?
        .query_row(params![number, now_unix], |r| {
            Ok(CachedLookup {
                name: r.get(0)?,
                address: r.get(1)?,
                found: r.get::<_, i64>(2)? != 0,
            })
        })
        .optional()?)
}

/// What [`cache_put`] stores.
pub(crate) struct CacheEntry {
    pub number: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub found: bool,
    pub now_unix: i64,
    pub ttl_s: u64,
}

/// Stores (or replaces) the service's answer for a number, valid for `ttl_s` seconds.
/// Name and address are cleaned and cut, not refused (they come from the network); a
/// negative entry (`found == false`) keeps neither.
pub(crate) fn cache_put(conn: &Connection, e: &CacheEntry) -> Result<()> {
    validate::e164(Field::Number, &e.number)?;
    let (name, address) = if e.found {
        (
            e.name
                .as_deref()
                .and_then(|s| validate::clean_text(s, MAX_CACHED_NAME_LEN)),
            e.address
                .as_deref()
                .and_then(|s| validate::clean_text(s, MAX_CACHED_ADDRESS_LEN)),
        )
    } else {
        (None, None)
    };
    let ttl = i64::try_from(e.ttl_s).unwrap_or(i64::MAX);
    let expires_at = e.now_unix.saturating_add(ttl);
    conn.prepare_cached(
        "INSERT INTO lookup_cache (number, name, address, found, fetched_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(number) DO UPDATE SET
             name = excluded.name, address = excluded.address, found = excluded.found,
             fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
    )?
    .execute(params![
        e.number,
        name,
        address,
        i64::from(e.found),
        e.now_unix,
        expires_at
    ])?;
    Ok(())
}

/// Deletes cache entries expired at or before `now_unix`; returns how many.
pub(crate) fn cache_purge(conn: &Connection, now_unix: i64) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM lookup_cache WHERE expires_at <= ?1",
        [now_unix],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::super::repo::{add_tenant, add_user, remove_tenant};
    use super::super::schema;
    use super::super::{NewUser, Password};
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn =
            schema::open_writer(&dir.path().join("t.db"), schema::BUSY_TIMEOUT).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        (dir, conn)
    }

    fn contact(tenant: TenantId, number: &str, first: &str, last: &str) -> NewContact {
        NewContact {
            tenant,
            number: number.into(),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company: None,
            department: None,
            note: None,
        }
    }

    fn invalid_field<T: std::fmt::Debug>(r: Result<T>) -> Field {
        match r {
            Err(StoreError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn add_list_remove_contacts() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let other = add_tenant(&conn, "Beta").expect("tenant");
        add_contact(&conn, &contact(t, "+4790000002", "Kari", "Nordmann")).expect("add");
        let mut firm = contact(t, "+4722000000", "", "");
        firm.company = Some("Posten".into());
        firm.department = Some("".into());
        add_contact(&conn, &firm).expect("company only");
        add_contact(&conn, &contact(t, "+4790000001", "Ola", "Berg")).expect("add");
        // The same number in another tenant's directory is a different contact.
        add_contact(&conn, &contact(other, "+4790000002", "K", "N")).expect("other tenant");
        assert!(matches!(
            add_contact(&conn, &contact(t, "+4790000002", "X", "Y")),
            Err(StoreError::Duplicate {
                field: Field::ContactNumber
            })
        ));
        let listed = list_contacts(&conn, t).expect("list");
        let order: Vec<_> = listed.iter().map(|c| c.display_name()).collect();
        assert_eq!(
            order,
            [
                Some("Ola Berg".to_owned()),
                Some("Kari Nordmann".to_owned()),
                Some("Posten".to_owned())
            ]
        );
        assert_eq!(
            listed[2].first_name, None,
            "empty strings are stored as absent"
        );
        assert_eq!(listed[2].department, None);

        remove_contact(&conn, t, "+4790000002").expect("remove");
        assert!(matches!(
            remove_contact(&conn, t, "+4790000002"),
            Err(StoreError::NotFound(Entity::Contact))
        ));
        assert_eq!(list_contacts(&conn, other).expect("list").len(), 1);
        assert!(matches!(
            list_contacts(&conn, TenantId(99)),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
        // Removing the tenant removes its directory.
        remove_tenant(&mut conn, t, false).expect("remove tenant");
        let left: i64 = conn
            .query_row("SELECT count(*) FROM directory_contacts", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 1);
    }

    #[test]
    fn contact_validation() {
        let (_d, conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        assert_eq!(
            invalid_field(add_contact(&conn, &contact(t, "90000000", "A", "B"))),
            Field::ContactNumber
        );
        assert_eq!(
            invalid_field(add_contact(&conn, &contact(t, "+4790000000", "", ""))),
            Field::FirstName,
            "no name at all"
        );
        assert_eq!(
            invalid_field(add_contact(&conn, &contact(t, "+4790000000", " A", "B"))),
            Field::FirstName
        );
        let mut c = contact(t, "+4790000000", "A", "B");
        c.note = Some("bell\u{7}".into());
        assert_eq!(invalid_field(add_contact(&conn, &c)), Field::Note);
        assert!(matches!(
            add_contact(&conn, &contact(TenantId(42), "+4790000000", "A", "B")),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
        assert_eq!(
            invalid_field(remove_contact(&conn, t, "bogus")),
            Field::ContactNumber
        );
    }

    #[test]
    fn csv_import_edge_cases() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let mut pre = contact(t, "+4790000003", "Old", "Name");
        pre.note = Some("keep me".into());
        add_contact(&conn, &pre).expect("pre-existing");
        let text = "\u{feff}number,first_name,last_name,company,department\r\n\
                    +4790000001,Kari,Nordmann,\"Acme, Inc.\",Sales\r\n\
                    \r\n\
                    +4790000002,\"Ola \"\"Olsen\"\"\",Berg,,\r\n\
                    004790000009,Bad,Number,,\r\n\
                    +4790000003,New,Name,,\r\n\
                    +4790000001,Dup,Line,,\r\n\
                    +4790000004,,,,\r\n\
                    \"+4790000005\",\"multi\r\nline\",x,,\r\n\
                    +4790000006,Tore,\"unterminated\r\n";
        let report = import_contacts_csv(&mut conn, t, text).expect("import");
        assert_eq!((report.added, report.updated), (2, 1), "{report:?}");
        let lines: Vec<usize> = report.rejected.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [5, 7, 8, 9, 11], "{report:?}");
        assert!(matches!(
            report.rejected[0].1,
            RejectReason::Invalid {
                field: Field::ContactNumber,
                ..
            }
        ));
        assert_eq!(
            report.rejected[1].1,
            RejectReason::DuplicateInFile { first_line: 2 }
        );
        assert!(matches!(
            report.rejected[2].1,
            RejectReason::Invalid {
                field: Field::FirstName,
                ..
            }
        ));
        // A line break inside a name is refused by the name rules.
        assert!(matches!(
            report.rejected[3].1,
            RejectReason::Invalid {
                field: Field::FirstName,
                ..
            }
        ));
        assert_eq!(report.rejected[4].1, RejectReason::UnterminatedQuote);

        let kari = find_contact(&conn, t, "+4790000001")
            .expect("find")
            .expect("added");
        assert_eq!(kari.company.as_deref(), Some("Acme, Inc."));
        assert_eq!(kari.department.as_deref(), Some("Sales"));
        let ola = find_contact(&conn, t, "+4790000002")
            .expect("find")
            .expect("added");
        assert_eq!(ola.first_name.as_deref(), Some("Ola \"Olsen\""));
        let updated = find_contact(&conn, t, "+4790000003")
            .expect("find")
            .expect("kept");
        assert_eq!(updated.display_name().as_deref(), Some("New Name"));
        assert_eq!(
            updated.note.as_deref(),
            Some("keep me"),
            "a column the file lacks keeps its value"
        );
    }

    #[test]
    fn csv_import_update_clears_present_empty_columns_and_is_atomic() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let first = import_contacts_csv(
            &mut conn,
            t,
            "number,first_name,last_name,company,department\n+4790000001,A,B,C,D\n",
        )
        .expect("import");
        assert_eq!(first.added, 1);
        let again = import_contacts_csv(
            &mut conn,
            t,
            "number;first_name;last_name;company;department\n+4790000001;A;B;;\n",
        )
        .expect("re-import");
        assert_eq!((again.added, again.updated), (0, 1));
        let c = find_contact(&conn, t, "+4790000001")
            .expect("find")
            .expect("there");
        assert_eq!((c.company, c.department), (None, None));

        // A bad header fails the whole import and changes nothing.
        assert!(matches!(
            import_contacts_csv(&mut conn, t, "nummer,navn\n+4790000002,X\n"),
            Err(StoreError::CsvHeader(csv::HeaderError::UnknownColumn(_)))
        ));
        assert!(matches!(
            import_contacts_csv(&mut conn, TenantId(77), "number,company\n+4790000002,X\n"),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
        assert_eq!(list_contacts(&conn, t).expect("list").len(), 1);
        let empty = import_contacts_csv(&mut conn, t, "number,company\r\n").expect("header only");
        assert_eq!(empty, ImportReport::default());
    }

    #[test]
    fn local_name_prefers_the_tenants_user_then_contact() {
        let (_d, conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let other = add_tenant(&conn, "Beta").expect("tenant");
        let u = add_user(
            &conn,
            &NewUser {
                tenant: t,
                name: "Kari Nordmann".into(),
                extension: "10".into(),
                mobile: Some("+4790000001".into()),
                sip_username: "kari".into(),
                realm: "sip.example.no".into(),
                password: Password::new("long-enough"),
            },
        )
        .expect("user");
        add_contact(&conn, &contact(t, "+4790000001", "Contact", "Name")).expect("contact");
        let mut firm = contact(t, "+4722000000", "", "");
        firm.company = Some("Posten".into());
        add_contact(&conn, &firm).expect("contact");

        assert_eq!(
            lookup_local_name(&conn, t, "+4790000001").expect("lookup"),
            Some(LocalName {
                name: "Kari Nordmann".into(),
                source: Source::User,
                user_id: Some(u)
            })
        );
        assert_eq!(
            lookup_local_name(&conn, t, "+4722000000").expect("lookup"),
            Some(LocalName {
                name: "Posten".into(),
                source: Source::Contact,
                user_id: None
            })
        );
        // Another tenant's user and directory are not looked at.
        assert_eq!(
            lookup_local_name(&conn, other, "+4790000001").expect("lookup"),
            None
        );
        assert_eq!(
            lookup_local_name(&conn, t, "anonymous").expect("lookup"),
            None
        );
    }

    #[test]
    fn cache_expiry_negative_entries_and_purge() {
        let (_d, conn) = db();
        let put = |number: &str, name: Option<&str>, found: bool, now: i64, ttl: u64| {
            cache_put(
                &conn,
                &CacheEntry {
                    number: number.into(),
                    name: name.map(str::to_owned),
                    address: Some("Storgata 1\r\n0155 Oslo".into()),
                    found,
                    now_unix: now,
                    ttl_s: ttl,
                },
            )
        };
        put("+4790000001", Some("Kari\u{0} Nordmann"), true, 1000, 60).expect("put");
        put("+4790000002", Some("ignored"), false, 1000, 30).expect("put negative");
        assert_eq!(
            cache_get(&conn, "+4790000001", 1059).expect("get"),
            Some(CachedLookup {
                name: Some("Kari  Nordmann".into()),
                address: Some("Storgata 1  0155 Oslo".into()),
                found: true
            })
        );
        assert_eq!(cache_get(&conn, "+4790000001", 1060).expect("get"), None);
        assert_eq!(
            cache_get(&conn, "+4790000002", 1000).expect("get"),
            Some(CachedLookup {
                name: None,
                address: None,
                found: false
            })
        );
        // Replacing refreshes the expiry.
        put("+4790000002", Some("Found now"), true, 2000, 100).expect("replace");
        assert_eq!(
            cache_get(&conn, "+4790000002", 2050)
                .expect("get")
                .and_then(|c| c.name),
            Some("Found now".into())
        );
        // A huge TTL saturates instead of overflowing.
        put("+4790000003", None, true, 1000, u64::MAX).expect("forever");
        assert!(cache_get(&conn, "+4790000003", i64::MAX - 1)
            .expect("get")
            .is_some());
        assert_eq!(invalid_field(put("bogus", None, true, 0, 1)), Field::Number);

        assert_eq!(cache_purge(&conn, 2000).expect("purge"), 1, "only +..01");
        assert_eq!(cache_purge(&conn, 2000).expect("purge"), 0);
        assert_eq!(cache_purge(&conn, 2100).expect("purge"), 1, "+..02");
    }
}
