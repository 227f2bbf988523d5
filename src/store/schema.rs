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
    // v3: caller-ID enrichment (tenant directories, the external lookup cache) and the
    // call log (calls, their legs, the users involved).
    r#"
    -- A tenant's directory of contacts: names for calling numbers. Names are optional
    -- each, but the store requires a first name, last name or company.
    CREATE TABLE directory_contacts (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        number      TEXT NOT NULL,
        first_name  TEXT,
        last_name   TEXT,
        company     TEXT,
        department  TEXT,
        note        TEXT,
        created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
        UNIQUE (tenant_id, number)
    ) STRICT;
    -- The lookup by (tenant, number) and the cascade from tenants use the UNIQUE index.

    -- Answers of the external directory service, shared by all tenants (it answers the
    -- same for everyone). found = 0 is a negative entry: the service had nothing, so it
    -- is not asked again until expiry. Times are Unix seconds given by the caller.
    CREATE TABLE lookup_cache (
        number      TEXT PRIMARY KEY,
        name        TEXT,
        address     TEXT,
        found       INTEGER NOT NULL CHECK (found IN (0, 1)),
        fetched_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        CHECK (found = 1 OR (name IS NULL AND address IS NULL))
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX lookup_cache_expires ON lookup_cache(expires_at);

    -- One row per call, written when it ends. Times are Unix milliseconds.
    -- tenant_id is NULL when no tenant was found (e.g. a trunk call to an unknown
    -- number). ON DELETE CASCADE, not SET NULL: the rows are the tenant's personal data
    -- (its callers' numbers and names); once the customer is removed nobody can list
    -- them by tenant any more, so keeping them orphaned would only keep personal data
    -- without a purpose. Billing records, if ever needed, belong in their own table.
    CREATE TABLE calls (
        id                   INTEGER PRIMARY KEY,
        tenant_id            INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
        direction            TEXT NOT NULL
                             CHECK (direction IN ('inbound', 'outbound', 'internal')),
        caller_number        TEXT NOT NULL,
        caller_name          TEXT,
        callee_number        TEXT NOT NULL,
        callee_name          TEXT,
        started_at           INTEGER NOT NULL,
        answered_at          INTEGER,
        ended_at             INTEGER NOT NULL,
        -- Talk time (answer to end); 0 if unanswered.
        duration_ms          INTEGER NOT NULL CHECK (duration_ms >= 0),
        outcome              TEXT NOT NULL
                             CHECK (outcome IN ('answered', 'missed', 'busy', 'failed',
                                                'cancelled')),
        answered_by_user_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
        forward_reason       TEXT,
        -- Who hung up or the SIP cause.
        end_reason           TEXT,
        -- The SIP Call-IDs of every leg, space-separated (a Call-ID has no spaces).
        sip_call_ids         TEXT NOT NULL DEFAULT ''
    ) STRICT;
    -- Listing per tenant newest first; the retention sweep and the all-tenant listing;
    -- the SET NULL when a user is removed (without it, a full scan per removed user).
    CREATE INDEX calls_tenant_started ON calls(tenant_id, started_at);
    CREATE INDEX calls_started ON calls(started_at);
    CREATE INDEX calls_answered_by ON calls(answered_by_user_id);

    -- The legs (dialogs) of a call in creation order. No CHECK on kind and outcome, so
    -- later kinds (queue, agent, conference) need no table rebuild; the store writes
    -- only typed values and refuses unknown ones when reading.
    CREATE TABLE call_legs (
        id           INTEGER PRIMARY KEY,
        call_id      INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        user_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
        kind         TEXT NOT NULL,
        target       TEXT NOT NULL,
        sip_call_id  TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        answered_at  INTEGER,
        ended_at     INTEGER NOT NULL,
        outcome      TEXT NOT NULL,
        status_code  INTEGER CHECK (status_code BETWEEN 100 AND 699),
        UNIQUE (call_id, seq)
    ) STRICT;
    -- (call_id, seq) serves the cascade from calls; this one the SET NULL from users.
    CREATE INDEX call_legs_user ON call_legs(user_id);

    -- The users involved in a call, so a user's own call log is one indexed query.
    CREATE TABLE call_users (
        call_id  INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role     TEXT NOT NULL,
        PRIMARY KEY (call_id, user_id, role)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX call_users_user ON call_users(user_id, call_id);
    "#,
    // v4: per-user call settings (forwarding, presented number). A user without a row
    // has the defaults, so existing users need no backfill.
    r#"
    CREATE TABLE user_settings (
        user_id            INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        -- Forwarding targets: E.164 or an extension of the user's tenant; NULL = none.
        forward_always     TEXT,
        forward_busy       TEXT,
        forward_no_answer  TEXT,
        no_answer_s        INTEGER NOT NULL DEFAULT 20 CHECK (no_answer_s BETWEEN 5 AND 120),
        present            TEXT NOT NULL DEFAULT 'own' CHECK (present IN ('own', 'main', 'hidden'))
    ) STRICT;
    "#,
    // v5: a personal number can be assigned to a user (it rings that user and is the
    // number the user's calls present). NULL: not assigned (main and queue numbers, or a
    // personal number that is some user's mobile).
    r#"
    ALTER TABLE tenant_numbers ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
    CREATE INDEX tenant_numbers_user ON tenant_numbers(user_id);
    "#,
    // v6: media statistics of a call whose media went through sentralbord, one row per
    // side (RFC 3550 receiver statistics as the media plane measured them). A call
    // without rows had no anchored media. No CHECK on codec, so later codecs need no
    // table rebuild.
    r#"
    CREATE TABLE call_media (
        call_id           INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        leg               TEXT NOT NULL CHECK (leg IN ('caller', 'callee')),
        codec             TEXT,
        packets_received  INTEGER NOT NULL CHECK (packets_received >= 0),
        packets_sent      INTEGER NOT NULL CHECK (packets_sent >= 0),
        packets_lost      INTEGER NOT NULL CHECK (packets_lost >= 0),
        jitter_ms         REAL NOT NULL CHECK (jitter_ms >= 0),
        bytes_received    INTEGER NOT NULL CHECK (bytes_received >= 0),
        PRIMARY KEY (call_id, leg)
    ) STRICT, WITHOUT ROWID;
    -- The primary key serves the cascade from calls and the lookup per call.
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
                "call_legs",
                "call_media",
                "call_users",
                "calls",
                "daemon_secrets",
                "directory_contacts",
                "lookup_cache",
                "registrations",
                "tenant_numbers",
                "tenants",
                "user_settings",
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
    fn v2_database_migrates_to_v3_keeping_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v2.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        // A database as the previous release left it.
        for step in &MIGRATIONS[..2] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
        conn.execute("INSERT INTO tenants(name) VALUES ('Acme')", [])
            .expect("insert");
        assert_eq!(migrate(&mut conn).expect("migrate"), 2);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1);
        // The new tables work, including the CHECKs and the cascade from tenants.
        conn.execute(
            "INSERT INTO calls (tenant_id, direction, caller_number, callee_number,
                                started_at, ended_at, duration_ms, outcome)
             VALUES (1, 'inbound', '+4790000001', '+4721000000', 0, 1, 0, 'missed')",
            [],
        )
        .expect("call");
        assert!(conn
            .execute(
                "INSERT INTO calls (direction, caller_number, callee_number, started_at,
                                    ended_at, duration_ms, outcome)
                 VALUES ('sideways', 'a', 'b', 0, 1, 0, 'missed')",
                [],
            )
            .is_err());
        conn.execute("DELETE FROM tenants", []).expect("delete");
        let calls: i64 = conn
            .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .expect("count");
        assert_eq!(calls, 0);
    }

    #[test]
    fn v3_database_migrates_to_v4_keeping_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v3.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..3] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 3)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Ola', '10', 'u10', 'sip.example.no', 'x', 'y');",
        )
        .expect("v3 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), 3);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let users: i64 = conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .expect("count");
        assert_eq!(users, 1);
        // Defaults, CHECKs and the cascade from users.
        conn.execute("INSERT INTO user_settings(user_id) VALUES (1)", [])
            .expect("defaults");
        let (secs, present): (i64, String) = conn
            .query_row(
                "SELECT no_answer_s, present FROM user_settings WHERE user_id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        assert_eq!((secs, present.as_str()), (20, "own"));
        assert!(conn
            .execute("UPDATE user_settings SET no_answer_s = 4", [])
            .is_err());
        assert!(conn
            .execute("UPDATE user_settings SET present = 'other'", [])
            .is_err());
        assert!(conn
            .execute("INSERT INTO user_settings(user_id) VALUES (99)", [])
            .is_err());
        conn.execute("DELETE FROM users", []).expect("delete");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM user_settings", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 0);
    }

    #[test]
    fn v4_database_migrates_to_v5_keeping_numbers_unassigned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v4.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..4] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO tenant_numbers(number, tenant_id, kind) VALUES ('+4721000000', 1, 'user');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Ola', '10', 'u10', 'sip.example.no', 'x', 'y');",
        )
        .expect("v4 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), 4);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let user: Option<i64> = conn
            .query_row("SELECT user_id FROM tenant_numbers", [], |r| r.get(0))
            .expect("row");
        assert_eq!(user, None);
        conn.execute("UPDATE tenant_numbers SET user_id = 1", [])
            .expect("assign");
        assert!(conn
            .execute("UPDATE tenant_numbers SET user_id = 99", [])
            .is_err());
        // Removing the user keeps the number, unassigned.
        conn.execute("DELETE FROM users", []).expect("delete");
        let (count, user): (i64, Option<i64>) = conn
            .query_row(
                "SELECT count(*), max(user_id) FROM tenant_numbers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        assert_eq!((count, user), (1, None));
    }

    #[test]
    fn v5_database_migrates_to_v6_keeping_calls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v5.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..5] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 5)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO calls (tenant_id, direction, caller_number, callee_number,
                                started_at, ended_at, duration_ms, outcome)
             VALUES (1, 'inbound', '+4790000001', '+4721000000', 0, 1, 0, 'missed'),
                    (1, 'inbound', '+4790000002', '+4721000000', 5, 9, 0, 'missed');",
        )
        .expect("v5 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), 5);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let calls: i64 = conn
            .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .expect("count");
        assert_eq!(calls, 2, "v5 calls kept");
        let media: i64 = conn
            .query_row("SELECT count(*) FROM call_media", [], |r| r.get(0))
            .expect("count");
        assert_eq!(media, 0, "old calls have no media rows");

        let insert = |call: i64, leg: &str, codec: Option<&str>, lost: i64, jitter: f64| {
            conn.execute(
                "INSERT INTO call_media (call_id, leg, codec, packets_received, packets_sent,
                                         packets_lost, jitter_ms, bytes_received)
                 VALUES (?1, ?2, ?3, 100, 100, ?4, ?5, 16000)",
                rusqlite::params![call, leg, codec, lost, jitter],
            )
        };
        insert(1, "caller", Some("PCMU"), 2, 1.5).expect("caller");
        insert(1, "callee", None, 0, 0.0).expect("callee, no codec");
        insert(2, "caller", Some("PCMA"), 0, 3.0).expect("other call");
        assert!(
            insert(1, "caller", Some("PCMU"), 0, 0.0).is_err(),
            "one row per leg"
        );
        assert!(insert(2, "agent", None, 0, 0.0).is_err(), "leg CHECK");
        assert!(insert(2, "callee", None, -1, 0.0).is_err(), "lost >= 0");
        assert!(insert(2, "callee", None, 0, -0.5).is_err(), "jitter >= 0");
        assert!(insert(99, "callee", None, 0, 0.0).is_err(), "no such call");
        // Deleting a call (retention) takes its media rows; the other call's stay.
        conn.execute("DELETE FROM calls WHERE id = 1", [])
            .expect("delete");
        let left: Vec<(i64, String)> = conn
            .prepare("SELECT call_id, leg FROM call_media")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        assert_eq!(left, [(2, "caller".to_owned())]);
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
