//! Connection set-up and schema migrations keyed by `PRAGMA user_version`.
//!
//! [`MIGRATIONS`] is append-only: step `i` (0-based) takes the schema from version `i` to
//! `i + 1`. Never edit a released step; add a new one. Each step runs in its own
//! `BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a failed step
//! leaves the file at the previous version, and two processes opening the same new file
//! at once (daemon and CLI) cannot both apply it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// The schema steps, in order. Version N is reached after applying the first N.
pub const MIGRATIONS: &[&str] = &[
    // v1: tenants, their numbers, users with digest credentials, registrar bindings.
    r#"
    CREATE TABLE tenants (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
        -- Audit metadata only (never used for decisions), so SQLite's clock stamps it.
        created_at  INTEGER NOT NULL DEFAULT (unixepoch())
    ) STRICT;

    CREATE TABLE tenant_numbers (
        number      TEXT PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL CHECK (kind IN ('main', 'user', 'queue')),
        created_at  INTEGER NOT NULL DEFAULT (unixepoch())
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX tenant_numbers_tenant ON tenant_numbers(tenant_id);

    CREATE TABLE users (
        id              INTEGER PRIMARY KEY,
        tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name            TEXT NOT NULL,
        extension       TEXT NOT NULL,
        mobile          TEXT,
        sip_username    TEXT NOT NULL,
        realm           TEXT NOT NULL,
        ha1_md5         TEXT NOT NULL,
        ha1_sha256      TEXT NOT NULL,
        ha1_sha512_256  TEXT,
        created_at      INTEGER NOT NULL DEFAULT (unixepoch()),
        UNIQUE (tenant_id, extension),
        UNIQUE (realm, sip_username)
    ) STRICT;
    -- A mobile identifies its user's calls arriving from the trunk (sescase=orig), so it
    -- must belong to one user across all tenants. NULLs do not collide.
    CREATE UNIQUE INDEX users_mobile ON users(mobile);

    CREATE TABLE registrations (
        id              INTEGER PRIMARY KEY,
        user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        aor             TEXT NOT NULL,
        contact         TEXT NOT NULL,
        contact_params  TEXT NOT NULL DEFAULT '',
        expires_at      INTEGER NOT NULL,
        q               REAL,
        call_id         TEXT NOT NULL,
        cseq            INTEGER NOT NULL,
        source          TEXT NOT NULL,
        instance        TEXT,
        reg_id          INTEGER,
        path            TEXT,
        user_agent      TEXT,
        updated_at      INTEGER NOT NULL,
        UNIQUE (aor, contact)
    ) STRICT;
    -- The expiry sweep and the cascade from users need these; (aor, contact) is served
    -- by the UNIQUE index.
    CREATE INDEX registrations_expires ON registrations(expires_at);
    CREATE INDEX registrations_user ON registrations(user_id);
    "#,
    // v2: secrets the daemon keeps across restarts (the digest nonce key, so nonces
    // issued before a restart are still recognised and answered as stale, not forged).
    r#"
    CREATE TABLE daemon_secrets (
        name        TEXT PRIMARY KEY,
        value       BLOB NOT NULL CHECK (length(value) = 32),
        created_at  INTEGER NOT NULL DEFAULT (unixepoch())
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    // The list is tiny; the cast cannot truncate.
    MIGRATIONS.len() as i64
}

/// How long a connection waits for another process's lock before failing with "busy".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the write connection and configures it: WAL,
/// `synchronous=NORMAL` (durable across process crashes; WAL keeps the file consistent
/// across power loss, losing at most the last commits), foreign keys, busy timeout.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(busy_timeout).map_err(open_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Only possible for special files (in-memory); readers would not see writes.
        return Err(StoreError::NotWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    // Must be set outside any transaction; it is a no-op inside one.
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_err)?;
    Ok(conn)
}

/// Opens a read connection on an existing, migrated database.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(busy_timeout).map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_err)?;
    Ok(conn)
}

/// Reads the schema version of a database.
pub fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the database to [`latest_version`]; refuses a database newer than that.
/// Returns the version found before migrating. Re-running it is a no-op.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found = user_version(conn)?;
    check_not_newer(found)?;
    let mut current = found;
    while current < latest_version() {
        let next = current + 1;
        let step_err = |source| StoreError::Migration {
            version: next,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(step_err)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let now_at: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(step_err)?;
        check_not_newer(now_at)?;
        if now_at != current {
            current = now_at;
            continue;
        }
        let index = usize::try_from(current).map_err(|_| StoreError::BadRow {
            column: "user_version",
        })?;
        let sql = MIGRATIONS.get(index).ok_or(StoreError::BadRow {
            column: "user_version",
        })?;
        tx.execute_batch(sql).map_err(step_err)?;
        tx.pragma_update(None, "user_version", next)
            .map_err(step_err)?;
        tx.commit().map_err(step_err)?;
        current = next;
    }
    Ok(found)
}

fn check_not_newer(found: i64) -> Result<(), StoreError> {
    if found > latest_version() || found < 0 {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }

    #[test]
    fn migrates_empty_db_to_latest_and_reopen_is_noop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a").join("b.db");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");

        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        assert_eq!(migrate(&mut conn).expect("migrate"), 0);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        assert_eq!(
            table_names(&conn),
            [
                "daemon_secrets",
                "registrations",
                "tenant_numbers",
                "tenants",
                "users"
            ]
        );
        conn.execute("INSERT INTO tenants(name) VALUES ('kept')", [])
            .expect("insert");
        drop(conn);

        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("reopen");
        assert_eq!(migrate(&mut conn).expect("migrate again"), latest_version());
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1, "re-opening must not touch data");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .expect("set version");
        match migrate(&mut conn) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!(found, latest_version() + 1);
                assert_eq!(supported, latest_version());
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        // Untouched: no tables were created.
        assert!(table_names(&conn).is_empty());
    }

    #[test]
    fn failed_step_leaves_previous_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clash.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        // A table that step 1 wants to create already exists: the step must fail whole.
        conn.execute_batch("CREATE TABLE users (x INTEGER)")
            .expect("pre-create");
        match migrate(&mut conn) {
            Err(StoreError::Migration { version: 1, .. }) => {}
            other => panic!("expected Migration error, got {other:?}"),
        }
        assert_eq!(user_version(&conn).expect("version"), 0);
        assert_eq!(table_names(&conn), ["users"], "step 1 rolled back entirely");
    }
}
