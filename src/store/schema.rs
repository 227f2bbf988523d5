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
    // v7: queues and answer groups (members, overflow rules, opening hours, VIP numbers,
    // agents' presence), a revision counter the daemon polls to reload them, the queue
    // call log (one row per queue visit of a call, with the offers to agents) and the
    // live snapshot the daemon writes for `queue status`.
    r#"
    -- Per tenant: the zone of opening hours and local dates, and how long queue history
    -- is kept.
    ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Oslo'
        CHECK (length(time_zone) BETWEEN 1 AND 64);
    ALTER TABLE tenants ADD COLUMN queue_retention_days INTEGER NOT NULL DEFAULT 90
        CHECK (queue_retention_days BETWEEN 1 AND 3650);

    CREATE TABLE queues (
        id                INTEGER PRIMARY KEY,
        tenant_id         INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name              TEXT NOT NULL COLLATE NOCASE,
        kind              TEXT NOT NULL CHECK (kind IN ('queue', 'group')),
        strategy          TEXT NOT NULL
                          CHECK (strategy IN ('ring-all', 'linear', 'round-robin',
                                              'longest-idle', 'fewest-calls', 'random')),
        ring_timeout_s    INTEGER NOT NULL DEFAULT 20 CHECK (ring_timeout_s BETWEEN 1 AND 600),
        wrap_up_s         INTEGER NOT NULL DEFAULT 10 CHECK (wrap_up_s BETWEEN 0 AND 3600),
        max_wait_s        INTEGER CHECK (max_wait_s BETWEEN 1 AND 86400),
        max_callers       INTEGER CHECK (max_callers BETWEEN 1 AND 10000),
        announce_every_s  INTEGER CHECK (announce_every_s BETWEEN 5 AND 3600),
        -- A prompt name (media::prompt naming), NULL: no greeting.
        greeting          TEXT,
        created_at        INTEGER NOT NULL DEFAULT (unixepoch()),
        UNIQUE (tenant_id, name)
    ) STRICT;

    -- Members are users of the queue's tenant (checked by the store). position orders
    -- linear and round-robin ringing.
    CREATE TABLE queue_members (
        queue_id        INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        position        INTEGER NOT NULL CHECK (position BETWEEN 0 AND 100000),
        ring_timeout_s  INTEGER CHECK (ring_timeout_s BETWEEN 1 AND 600),
        PRIMARY KEY (queue_id, user_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX queue_members_user ON queue_members(user_id);

    -- One target per queue and condition. A target queue is of the same tenant and not
    -- the queue itself (checked by the store); removing it is refused while referred to,
    -- unless forced, which takes the rules with it (the cascade).
    CREATE TABLE queue_overflow (
        queue_id         INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        condition        TEXT NOT NULL
                         CHECK (condition IN ('max-wait', 'full', 'no-agents', 'closed')),
        target_kind      TEXT NOT NULL
                         CHECK (target_kind IN ('queue', 'user', 'number', 'announcement')),
        target_queue_id  INTEGER REFERENCES queues(id) ON DELETE CASCADE,
        target_user_id   INTEGER REFERENCES users(id) ON DELETE CASCADE,
        target_number    TEXT,
        -- The announcement's prompt; NULL: the default one.
        target_prompt    TEXT,
        PRIMARY KEY (queue_id, condition),
        CHECK ((target_kind = 'queue') = (target_queue_id IS NOT NULL)),
        CHECK ((target_kind = 'user') = (target_user_id IS NOT NULL)),
        CHECK ((target_kind = 'number') = (target_number IS NOT NULL)),
        CHECK (target_kind = 'announcement' OR target_prompt IS NULL)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX queue_overflow_target_queue ON queue_overflow(target_queue_id);
    CREATE INDEX queue_overflow_target_user ON queue_overflow(target_user_id);

    -- Weekly opening ranges in the tenant's local time (weekday 0 = Monday). A queue
    -- without weekly rows and without exceptions is always open.
    CREATE TABLE queue_hours (
        queue_id   INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        weekday    INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
        open_min   INTEGER NOT NULL CHECK (open_min BETWEEN 0 AND 1439),
        close_min  INTEGER NOT NULL CHECK (close_min BETWEEN 1 AND 1440 AND close_min > open_min),
        PRIMARY KEY (queue_id, weekday, open_min)
    ) STRICT, WITHOUT ROWID;

    -- Dates on which the weekly hours do not apply: open only within open_min..close_min,
    -- or closed all day (both NULL).
    CREATE TABLE queue_holidays (
        queue_id   INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        date       TEXT NOT NULL
                   CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
        open_min   INTEGER CHECK (open_min BETWEEN 0 AND 1439),
        close_min  INTEGER CHECK (close_min BETWEEN 1 AND 1440 AND close_min > open_min),
        PRIMARY KEY (queue_id, date),
        CHECK ((open_min IS NULL) = (close_min IS NULL))
    ) STRICT, WITHOUT ROWID;

    -- Numbers (E.164) that go ahead of the others in every queue of the tenant.
    CREATE TABLE vip_numbers (
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        number      TEXT NOT NULL,
        note        TEXT,
        created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
        PRIMARY KEY (tenant_id, number)
    ) STRICT, WITHOUT ROWID;

    -- An agent's own state (feature codes, CLI); no row: logged out.
    CREATE TABLE agent_state (
        user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        presence       TEXT NOT NULL CHECK (presence IN ('in', 'out', 'paused')),
        pause_reason   TEXT,
        changed_at_ms  INTEGER NOT NULL,
        CHECK (presence = 'paused' OR pause_reason IS NULL)
    ) STRICT;

    -- A number (main or queue kind) can lead to a queue.
    ALTER TABLE tenant_numbers ADD COLUMN queue_id INTEGER REFERENCES queues(id) ON DELETE SET NULL;
    CREATE INDEX tenant_numbers_queue ON tenant_numbers(queue_id);

    -- Bumped by the triggers below on every change of the queue configuration; the
    -- daemon polls it and reloads when it changed (no restart, no signal needed).
    CREATE TABLE queue_config_revision (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        revision  INTEGER NOT NULL
    ) STRICT;
    INSERT INTO queue_config_revision (id, revision) VALUES (1, 0);
    CREATE TRIGGER queues_rev_i AFTER INSERT ON queues
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queues_rev_u AFTER UPDATE ON queues
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queues_rev_d AFTER DELETE ON queues
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_members_rev_i AFTER INSERT ON queue_members
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_members_rev_u AFTER UPDATE ON queue_members
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_members_rev_d AFTER DELETE ON queue_members
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_overflow_rev_i AFTER INSERT ON queue_overflow
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_overflow_rev_u AFTER UPDATE ON queue_overflow
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_overflow_rev_d AFTER DELETE ON queue_overflow
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_hours_rev_i AFTER INSERT ON queue_hours
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_hours_rev_u AFTER UPDATE ON queue_hours
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_hours_rev_d AFTER DELETE ON queue_hours
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_holidays_rev_i AFTER INSERT ON queue_holidays
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_holidays_rev_u AFTER UPDATE ON queue_holidays
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER queue_holidays_rev_d AFTER DELETE ON queue_holidays
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER vip_numbers_rev_i AFTER INSERT ON vip_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER vip_numbers_rev_u AFTER UPDATE ON vip_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER vip_numbers_rev_d AFTER DELETE ON vip_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER agent_state_rev_i AFTER INSERT ON agent_state
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER agent_state_rev_u AFTER UPDATE ON agent_state
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER agent_state_rev_d AFTER DELETE ON agent_state
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_rev_i AFTER INSERT ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_rev_u AFTER UPDATE ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_rev_d AFTER DELETE ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenants_time_zone_rev AFTER UPDATE OF time_zone ON tenants
        WHEN OLD.time_zone IS NOT NEW.time_zone
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;

    -- The queue call log: one row per visit of a call to a queue (a call that overflows
    -- from A to B has a row for each). It outlives the call log row (the user call log is
    -- kept 30 days, queue history per tenant), so call_id is SET NULL, not CASCADE; a
    -- removed queue or user leaves the history with its name. Times are Unix ms.
    CREATE TABLE queue_visits (
        id                   INTEGER PRIMARY KEY,
        call_id              INTEGER REFERENCES calls(id) ON DELETE SET NULL,
        tenant_id            INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        queue_id             INTEGER REFERENCES queues(id) ON DELETE SET NULL,
        queue_name           TEXT NOT NULL,
        caller_number        TEXT NOT NULL,
        caller_name          TEXT,
        vip                  INTEGER NOT NULL CHECK (vip IN (0, 1)),
        entered_at           INTEGER NOT NULL,
        answered_at          INTEGER,
        answered_by_user_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
        left_at              INTEGER NOT NULL,
        -- Entered to answered, or to leaving when unanswered.
        wait_ms              INTEGER NOT NULL CHECK (wait_ms >= 0),
        talk_ms              INTEGER NOT NULL CHECK (talk_ms >= 0),
        outcome              TEXT NOT NULL
                             CHECK (outcome IN ('answered', 'abandoned', 'overflowed',
                                                'given-up', 'ended-by-switch')),
        overflow_reason      TEXT
                             CHECK (overflow_reason IN ('max-wait', 'full', 'no-agents',
                                                        'closed')),
        overflow_target      TEXT,
        transferred_to       TEXT,
        -- A missed visit (outcome not 'answered') is handled when a member calls the
        -- number back or the caller calls again and is answered.
        handled_by_user_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
        handled_at           INTEGER
    ) STRICT;
    -- Statistics, listing and retention per tenant and period; listing per queue (and
    -- the SET NULL from queues); the SET NULLs from calls and users; the search for
    -- unhandled missed visits of a number when a call is written.
    CREATE INDEX queue_visits_tenant_entered ON queue_visits(tenant_id, entered_at);
    CREATE INDEX queue_visits_queue_entered ON queue_visits(queue_id, entered_at);
    CREATE INDEX queue_visits_call ON queue_visits(call_id);
    CREATE INDEX queue_visits_answered_by ON queue_visits(answered_by_user_id);
    CREATE INDEX queue_visits_handled_by ON queue_visits(handled_by_user_id);
    CREATE INDEX queue_visits_unhandled ON queue_visits(tenant_id, caller_number)
        WHERE outcome <> 'answered' AND handled_at IS NULL;

    -- The offers of a visit to agents, in order.
    CREATE TABLE queue_offers (
        visit_id    INTEGER NOT NULL REFERENCES queue_visits(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
        offered_at  INTEGER NOT NULL,
        result      TEXT NOT NULL
                    CHECK (result IN ('answered', 'no-answer', 'refused', 'withdrawn')),
        PRIMARY KEY (visit_id, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX queue_offers_user ON queue_offers(user_id);

    -- The live state of each queue as the daemon last wrote it (all rows replaced at
    -- once); `queue status` reads it and tells when it is stale.
    CREATE TABLE queue_live (
        queue_id          INTEGER PRIMARY KEY REFERENCES queues(id) ON DELETE CASCADE,
        tenant_id         INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name              TEXT NOT NULL,
        agents_logged_in  INTEGER NOT NULL CHECK (agents_logged_in >= 0),
        agents_available  INTEGER NOT NULL CHECK (agents_available >= 0),
        agents_busy       INTEGER NOT NULL CHECK (agents_busy >= 0),
        agents_paused     INTEGER NOT NULL CHECK (agents_paused >= 0),
        callers_waiting   INTEGER NOT NULL CHECK (callers_waiting >= 0),
        longest_wait_ms   INTEGER CHECK (longest_wait_ms >= 0),
        answered_today    INTEGER NOT NULL CHECK (answered_today >= 0),
        unanswered_today  INTEGER NOT NULL CHECK (unanswered_today >= 0),
        updated_at_ms     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX queue_live_tenant ON queue_live(tenant_id);
    "#,
    // v8: conference rooms (a dial-in number through tenant_numbers.conference_id, PINs
    // as argon2 hashes), a revision counter the daemon polls to reload them, the
    // conference log (one row per conference that happened, one per participant's stay),
    // the live state the daemon writes for `conference participants`, and the control
    // commands the CLI leaves for the daemon.
    r#"
    CREATE TABLE conference_rooms (
        id                         INTEGER PRIMARY KEY,
        tenant_id                  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name                       TEXT NOT NULL COLLATE NOCASE,
        extension                  TEXT NOT NULL
                                   CHECK (length(extension) BETWEEN 2 AND 6
                                          AND extension NOT GLOB '*[^0-9]*'),
        -- argon2id PHC strings (never the PINs); NULL: no PIN.
        pin_hash                   TEXT,
        moderator_pin_hash         TEXT,
        max_participants           INTEGER NOT NULL DEFAULT 50
                                   CHECK (max_participants BETWEEN 2 AND 500),
        -- A user of the same tenant (checked by the store): a moderator without a PIN.
        owner_user_id              INTEGER REFERENCES users(id) ON DELETE SET NULL,
        end_when_moderator_leaves  INTEGER NOT NULL DEFAULT 0
                                   CHECK (end_when_moderator_leaves IN (0, 1)),
        -- The lock state a conference starts with; the moderator changes it live.
        locked                     INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
        created_at                 INTEGER NOT NULL DEFAULT (unixepoch()),
        UNIQUE (tenant_id, name),
        UNIQUE (tenant_id, extension)
    ) STRICT;
    CREATE INDEX conference_rooms_owner ON conference_rooms(owner_user_id);

    -- A room and a user of a tenant never share an extension, whichever comes second
    -- (the store maps these aborts to a duplicate extension).
    CREATE TRIGGER conference_rooms_ext_i BEFORE INSERT ON conference_rooms
        WHEN EXISTS (SELECT 1 FROM users
                     WHERE tenant_id = NEW.tenant_id AND extension = NEW.extension)
        BEGIN SELECT RAISE(ABORT, 'extension collides with a user'); END;
    CREATE TRIGGER conference_rooms_ext_u BEFORE UPDATE OF tenant_id, extension
        ON conference_rooms
        WHEN EXISTS (SELECT 1 FROM users
                     WHERE tenant_id = NEW.tenant_id AND extension = NEW.extension)
        BEGIN SELECT RAISE(ABORT, 'extension collides with a user'); END;
    CREATE TRIGGER users_ext_conference_i BEFORE INSERT ON users
        WHEN EXISTS (SELECT 1 FROM conference_rooms
                     WHERE tenant_id = NEW.tenant_id AND extension = NEW.extension)
        BEGIN SELECT RAISE(ABORT, 'extension collides with a conference room'); END;
    CREATE TRIGGER users_ext_conference_u BEFORE UPDATE OF tenant_id, extension ON users
        WHEN EXISTS (SELECT 1 FROM conference_rooms
                     WHERE tenant_id = NEW.tenant_id AND extension = NEW.extension)
        BEGIN SELECT RAISE(ABORT, 'extension collides with a conference room'); END;

    -- tenant_numbers is rebuilt for the kind 'conference' (a CHECK cannot be changed in
    -- place) and gets conference_id: a number leads to at most one of a user, a queue
    -- or a room, and a room has at most one number. No table refers to tenant_numbers,
    -- and its triggers go with the old table (DROP TABLE fires none), so they are
    -- created again below as v7 had them.
    CREATE TABLE tenant_numbers_v8 (
        number         TEXT PRIMARY KEY,
        tenant_id      INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL CHECK (kind IN ('main', 'user', 'queue', 'conference')),
        created_at     INTEGER NOT NULL DEFAULT (unixepoch()),
        user_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
        queue_id       INTEGER REFERENCES queues(id) ON DELETE SET NULL,
        conference_id  INTEGER REFERENCES conference_rooms(id) ON DELETE SET NULL,
        CHECK (conference_id IS NULL OR (user_id IS NULL AND queue_id IS NULL))
    ) STRICT, WITHOUT ROWID;
    INSERT INTO tenant_numbers_v8 (number, tenant_id, kind, created_at, user_id, queue_id)
        SELECT number, tenant_id, kind, created_at, user_id, queue_id FROM tenant_numbers;
    DROP TABLE tenant_numbers;
    ALTER TABLE tenant_numbers_v8 RENAME TO tenant_numbers;
    CREATE INDEX tenant_numbers_tenant ON tenant_numbers(tenant_id);
    CREATE INDEX tenant_numbers_user ON tenant_numbers(user_id);
    CREATE INDEX tenant_numbers_queue ON tenant_numbers(queue_id);
    CREATE UNIQUE INDEX tenant_numbers_conference ON tenant_numbers(conference_id)
        WHERE conference_id IS NOT NULL;
    CREATE TRIGGER tenant_numbers_rev_i AFTER INSERT ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_rev_u AFTER UPDATE ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_rev_d AFTER DELETE ON tenant_numbers
        BEGIN UPDATE queue_config_revision SET revision = revision + 1; END;

    -- Bumped on every change of a room or of the number leading to one; the daemon
    -- polls it and reloads the rooms when it changed.
    CREATE TABLE conference_config_revision (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        revision  INTEGER NOT NULL
    ) STRICT;
    INSERT INTO conference_config_revision (id, revision) VALUES (1, 0);
    CREATE TRIGGER conference_rooms_rev_i AFTER INSERT ON conference_rooms
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER conference_rooms_rev_u AFTER UPDATE ON conference_rooms
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER conference_rooms_rev_d AFTER DELETE ON conference_rooms
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_conference_rev_i AFTER INSERT ON tenant_numbers
        WHEN NEW.conference_id IS NOT NULL
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_conference_rev_u AFTER UPDATE ON tenant_numbers
        WHEN OLD.conference_id IS NOT NULL OR NEW.conference_id IS NOT NULL
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;
    CREATE TRIGGER tenant_numbers_conference_rev_d AFTER DELETE ON tenant_numbers
        WHEN OLD.conference_id IS NOT NULL
        BEGIN UPDATE conference_config_revision SET revision = revision + 1; END;

    -- The conference log: one row per conference that happened (in a room, or ad hoc
    -- from calls in progress), written when it ends. Kept like the user call log (30
    -- days, the same sweep); a removed room leaves it with the room's name. Unix ms.
    CREATE TABLE conferences (
        id             INTEGER PRIMARY KEY,
        tenant_id      INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        room_id        INTEGER REFERENCES conference_rooms(id) ON DELETE SET NULL,
        room_name      TEXT,
        ad_hoc         INTEGER NOT NULL CHECK (ad_hoc IN (0, 1)),
        started_at_ms  INTEGER NOT NULL,
        ended_at_ms    INTEGER NOT NULL,
        CHECK ((ad_hoc = 1) = (room_name IS NULL))
    ) STRICT;
    CREATE INDEX conferences_tenant_started ON conferences(tenant_id, started_at_ms);
    CREATE INDEX conferences_started ON conferences(started_at_ms);
    CREATE INDEX conferences_room ON conferences(room_id);

    -- One row per stay of a participant (who joined twice has two). call_id links the
    -- participant's own call log row, found by its SIP Call-ID whichever is written
    -- first (the conference or the call).
    CREATE TABLE conference_participants (
        conference_id  INTEGER NOT NULL REFERENCES conferences(id) ON DELETE CASCADE,
        seq            INTEGER NOT NULL,
        call_id        INTEGER REFERENCES calls(id) ON DELETE SET NULL,
        sip_call_id    TEXT,
        user_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
        number         TEXT NOT NULL,
        name           TEXT,
        moderator      INTEGER NOT NULL CHECK (moderator IN (0, 1)),
        joined_at_ms   INTEGER NOT NULL,
        left_at_ms     INTEGER NOT NULL,
        end_reason     TEXT NOT NULL CHECK (end_reason IN ('left', 'kicked', 'room-ended')),
        PRIMARY KEY (conference_id, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX conference_participants_call ON conference_participants(call_id);
    CREATE INDEX conference_participants_user ON conference_participants(user_id);
    CREATE INDEX conference_participants_unlinked ON conference_participants(sip_call_id)
        WHERE call_id IS NULL;
    -- Finds the call of a participant written before its conference.
    CREATE INDEX call_legs_sip_call_id ON call_legs(sip_call_id);

    -- The live state as the daemon last wrote it (all rows replaced at once): the rooms
    -- with a conference running, their participants, and when it was written (also
    -- when no conference runs, so the CLI can tell "empty" from "daemon not running").
    CREATE TABLE conference_live_rooms (
        room_id        INTEGER PRIMARY KEY REFERENCES conference_rooms(id) ON DELETE CASCADE,
        tenant_id      INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        locked         INTEGER NOT NULL CHECK (locked IN (0, 1)),
        started_at_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX conference_live_rooms_tenant ON conference_live_rooms(tenant_id);
    CREATE TABLE conference_live_participants (
        room_id         INTEGER NOT NULL
                        REFERENCES conference_live_rooms(room_id) ON DELETE CASCADE,
        participant_id  INTEGER NOT NULL CHECK (participant_id BETWEEN 0 AND 4294967295),
        user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
        number          TEXT NOT NULL,
        name            TEXT,
        joined_at_ms    INTEGER NOT NULL,
        muted           INTEGER NOT NULL CHECK (muted IN (0, 1)),
        talking         INTEGER NOT NULL CHECK (talking IN (0, 1)),
        moderator       INTEGER NOT NULL CHECK (moderator IN (0, 1)),
        PRIMARY KEY (room_id, participant_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX conference_live_participants_user ON conference_live_participants(user_id);
    CREATE TABLE conference_live_updated (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        updated_at_ms  INTEGER NOT NULL
    ) STRICT;

    -- Controls from the CLI to the running daemon. The daemon takes fresh ones (taken_at),
    -- applies them and records the result; the CLI expires what nobody took in time, so
    -- a daemon started later never applies it. Times are Unix ms.
    CREATE TABLE conference_commands (
        id              INTEGER PRIMARY KEY,
        room_id         INTEGER NOT NULL REFERENCES conference_rooms(id) ON DELETE CASCADE,
        action          TEXT NOT NULL
                        CHECK (action IN ('mute', 'unmute', 'kick', 'lock', 'unlock')),
        participant_id  INTEGER CHECK (participant_id BETWEEN 0 AND 4294967295),
        created_at_ms   INTEGER NOT NULL,
        taken_at_ms     INTEGER,
        done_at_ms      INTEGER,
        result          TEXT CHECK (result IN ('done', 'not-running', 'no-such-participant',
                                               'failed', 'expired')),
        CHECK ((action IN ('mute', 'unmute', 'kick')) = (participant_id IS NOT NULL)),
        CHECK ((done_at_ms IS NULL) = (result IS NULL))
    ) STRICT;
    -- The daemon's poll (only unfinished commands) and the retention sweep.
    CREATE INDEX conference_commands_unfinished ON conference_commands(created_at_ms)
        WHERE done_at_ms IS NULL;
    CREATE INDEX conference_commands_created ON conference_commands(created_at_ms);
    CREATE INDEX conference_commands_room ON conference_commands(room_id);
    "#,
    // v9: commands from the CLI to the running daemon about a user's calls in progress
    // (merge two answered calls into one ad-hoc conference). Taken, answered and expired
    // like conference_commands; the user (always of the tenant, checked by the store)
    // and the tenant take their commands with them. Times are Unix ms.
    r#"
    CREATE TABLE call_commands (
        id             INTEGER PRIMARY KEY,
        tenant_id      INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        action         TEXT NOT NULL CHECK (action IN ('merge')),
        created_at_ms  INTEGER NOT NULL,
        taken_at_ms    INTEGER,
        done_at_ms     INTEGER,
        result         TEXT CHECK (result IN ('done', 'not-two-calls', 'not-anchored',
                                              'not-mixable', 'failed', 'expired')),
        CHECK ((done_at_ms IS NULL) = (result IS NULL))
    ) STRICT;
    -- The daemon's poll (only unfinished commands), the retention sweep, the cascades.
    CREATE INDEX call_commands_unfinished ON call_commands(created_at_ms)
        WHERE done_at_ms IS NULL;
    CREATE INDEX call_commands_created ON call_commands(created_at_ms);
    CREATE INDEX call_commands_tenant ON call_commands(tenant_id);
    CREATE INDEX call_commands_user ON call_commands(user_id);
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
                "agent_state",
                "call_commands",
                "call_legs",
                "call_media",
                "call_users",
                "calls",
                "conference_commands",
                "conference_config_revision",
                "conference_live_participants",
                "conference_live_rooms",
                "conference_live_updated",
                "conference_participants",
                "conference_rooms",
                "conferences",
                "daemon_secrets",
                "directory_contacts",
                "lookup_cache",
                "queue_config_revision",
                "queue_holidays",
                "queue_hours",
                "queue_live",
                "queue_members",
                "queue_offers",
                "queue_overflow",
                "queue_visits",
                "queues",
                "registrations",
                "tenant_numbers",
                "tenants",
                "user_settings",
                "users",
                "vip_numbers"
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
    fn v6_database_migrates_to_v7_keeping_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v6.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..6] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 6)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO tenant_numbers(number, tenant_id, kind) VALUES ('+4721000000', 1, 'main');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Ola', '10', 'u10', 'sip.example.no', 'x', 'y');
             INSERT INTO calls (tenant_id, direction, caller_number, callee_number,
                                started_at, ended_at, duration_ms, outcome)
             VALUES (1, 'inbound', '+4790000001', '+4721000000', 0, 1, 0, 'missed');",
        )
        .expect("v6 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), 6);
        assert_eq!(user_version(&conn).expect("version"), latest_version());

        // Existing rows got the defaults; everything else is kept.
        let (tz, days): (String, i64) = conn
            .query_row(
                "SELECT time_zone, queue_retention_days FROM tenants",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("tenant");
        assert_eq!((tz.as_str(), days), ("Europe/Oslo", 90));
        let (count, queue): (i64, Option<i64>) = conn
            .query_row(
                "SELECT count(*), max(queue_id) FROM tenant_numbers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("numbers");
        assert_eq!((count, queue), (1, None));
        let revision = |conn: &Connection| -> i64 {
            conn.query_row("SELECT revision FROM queue_config_revision", [], |r| {
                r.get(0)
            })
            .expect("revision")
        };
        assert_eq!(revision(&conn), 0);

        // The new tables work, with their CHECKs, triggers and foreign keys.
        conn.execute_batch(
            "INSERT INTO queues (tenant_id, name, kind, strategy) VALUES (1, 'Support', 'queue',
                                                                     'ring-all');
             INSERT INTO queue_members (queue_id, user_id, position) VALUES (1, 1, 1);
             UPDATE tenant_numbers SET queue_id = 1;",
        )
        .expect("queue");
        assert_eq!(revision(&conn), 3, "one bump per change");
        let (ring, wrap): (i64, i64) = conn
            .query_row("SELECT ring_timeout_s, wrap_up_s FROM queues", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("defaults");
        assert_eq!((ring, wrap), (20, 10));
        for bad in [
            "INSERT INTO queues (tenant_id, name, kind, strategy)
             VALUES (1, 'support', 'queue', 'ring-all')",
            "INSERT INTO queues (tenant_id, name, kind, strategy)
             VALUES (1, 'Other', 'queue', 'top-down')",
            "INSERT INTO queues (tenant_id, name, kind, strategy, ring_timeout_s)
             VALUES (1, 'Other', 'queue', 'linear', 0)",
            "INSERT INTO queue_hours VALUES (1, 0, 600, 600)",
            "INSERT INTO queue_hours VALUES (1, 7, 0, 60)",
            "INSERT INTO queue_holidays VALUES (1, '24-12-2024', NULL, NULL)",
            "INSERT INTO queue_holidays VALUES (1, '2024-12-24', 600, NULL)",
            "INSERT INTO queue_overflow (queue_id, condition, target_kind)
             VALUES (1, 'full', 'queue')",
            "INSERT INTO queue_overflow (queue_id, condition, target_kind, target_number)
             VALUES (1, 'sometimes', 'number', '+4790000000')",
            "INSERT INTO agent_state VALUES (1, 'in', 'lunch', 0)",
            "INSERT INTO agent_state VALUES (99, 'in', NULL, 0)",
            "INSERT INTO tenants (name, queue_retention_days) VALUES ('B', 0)",
            "INSERT INTO queue_visits (tenant_id, queue_name, caller_number, vip, entered_at,
                                       left_at, wait_ms, talk_ms, outcome)
             VALUES (1, 'Support', '+4790000001', 0, 0, 1, 1, 0, 'lost')",
        ] {
            assert!(conn.execute(bad, []).is_err(), "{bad}");
        }
        conn.execute(
            "INSERT INTO queue_visits (call_id, tenant_id, queue_id, queue_name, caller_number,
                                       vip, entered_at, left_at, wait_ms, talk_ms, outcome)
             VALUES (1, 1, 1, 'Support', '+4790000001', 0, 0, 1, 1, 0, 'abandoned')",
            [],
        )
        .expect("visit");
        conn.execute(
            "INSERT INTO queue_offers VALUES (1, 0, 1, 0, 'no-answer')",
            [],
        )
        .expect("offer");
        // The call log's retention leaves the queue history (the visit loses its call);
        // the queue's removal leaves it too (the visit keeps its name).
        conn.execute("DELETE FROM calls", []).expect("calls");
        conn.execute("DELETE FROM queues", []).expect("queues");
        let (call, queue, offers): (Option<i64>, Option<i64>, i64) = conn
            .query_row(
                "SELECT call_id, queue_id, (SELECT count(*) FROM queue_offers)
                 FROM queue_visits",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("visit kept");
        assert_eq!((call, queue, offers), (None, None, 1));
        // The tenant's removal takes it.
        conn.execute("DELETE FROM tenants", []).expect("tenant");
        let visits: i64 = conn
            .query_row("SELECT count(*) FROM queue_visits", [], |r| r.get(0))
            .expect("count");
        assert_eq!(visits, 0);
    }

    #[test]
    fn v7_database_migrates_to_v8_keeping_numbers_and_their_triggers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v7.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..7] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 7)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Ola', '10', 'u10', 'sip.example.no', 'x', 'y');
             INSERT INTO queues (tenant_id, name, kind, strategy)
             VALUES (1, 'Support', 'queue', 'ring-all');
             INSERT INTO tenant_numbers(number, tenant_id, kind, created_at, user_id)
             VALUES ('+4721000001', 1, 'user', 17, 1);
             INSERT INTO tenant_numbers(number, tenant_id, kind, created_at, queue_id)
             VALUES ('+4721000002', 1, 'main', 18, 1);
             INSERT INTO calls (tenant_id, direction, caller_number, callee_number,
                                started_at, ended_at, duration_ms, outcome)
             VALUES (1, 'inbound', '+4790000001', '+4721000002', 0, 1, 0, 'missed');",
        )
        .expect("v7 data");
        let queue_revision = |conn: &Connection| -> i64 {
            conn.query_row("SELECT revision FROM queue_config_revision", [], |r| {
                r.get(0)
            })
            .expect("revision")
        };
        let conference_revision = |conn: &Connection| -> i64 {
            conn.query_row("SELECT revision FROM conference_config_revision", [], |r| {
                r.get(0)
            })
            .expect("revision")
        };
        let q_before = queue_revision(&conn);
        assert_eq!(migrate(&mut conn).expect("migrate"), 7);
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        assert_eq!(
            queue_revision(&conn),
            q_before,
            "the rebuild is no configuration change"
        );
        assert_eq!(conference_revision(&conn), 0);

        // Every number kept as it was, with the new column empty.
        type Row = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);
        let numbers: Vec<Row> = conn
            .prepare(
                "SELECT number, kind, created_at, user_id, queue_id, conference_id
                 FROM tenant_numbers ORDER BY number",
            )
            .expect("prepare")
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        assert_eq!(
            numbers,
            [
                (
                    "+4721000001".to_owned(),
                    "user".to_owned(),
                    17,
                    Some(1),
                    None,
                    None
                ),
                ("+4721000002".into(), "main".into(), 18, None, Some(1), None)
            ]
        );
        // Its indexes and the queue triggers came back with it; foreign keys still hold.
        for index in [
            "tenant_numbers_tenant",
            "tenant_numbers_user",
            "tenant_numbers_queue",
            "tenant_numbers_conference",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                    [index],
                    |r| r.get(0),
                )
                .expect("index");
            assert_eq!(n, 1, "{index}");
        }
        conn.execute(
            "UPDATE tenant_numbers SET queue_id = NULL WHERE queue_id = 1",
            [],
        )
        .expect("unassign");
        assert_eq!(queue_revision(&conn), q_before + 1);
        assert_eq!(conference_revision(&conn), 0, "no room involved");
        assert!(conn
            .execute("UPDATE tenant_numbers SET user_id = 99", [])
            .is_err());
        conn.execute("DELETE FROM users", []).expect("user removed");
        let user: Option<i64> = conn
            .query_row(
                "SELECT user_id FROM tenant_numbers WHERE number = '+4721000001'",
                [],
                |r| r.get(0),
            )
            .expect("row");
        assert_eq!(user, None, "SET NULL kept");

        // Rooms: the kind 'conference', one number per room, never a queue's as well.
        conn.execute_batch(
            "INSERT INTO conference_rooms (tenant_id, name, extension) VALUES (1, 'Board', '800');
             INSERT INTO tenant_numbers (number, tenant_id, kind, conference_id)
             VALUES ('+4721000100', 1, 'conference', 1);",
        )
        .expect("room with a number");
        assert_eq!(conference_revision(&conn), 2);
        for bad in [
            "INSERT INTO tenant_numbers (number, tenant_id, kind, conference_id)
             VALUES ('+4721000101', 1, 'main', 1)",
            "UPDATE tenant_numbers SET queue_id = 1 WHERE number = '+4721000100'",
            "INSERT INTO tenant_numbers (number, tenant_id, kind) VALUES ('+4721000102', 1, 'x')",
            "INSERT INTO conference_rooms (tenant_id, name, extension) VALUES (1, 'BOARD', '801')",
            "INSERT INTO conference_rooms (tenant_id, name, extension) VALUES (1, 'Sales', '8a')",
            "INSERT INTO conference_rooms (tenant_id, name, extension, max_participants)
             VALUES (1, 'Sales', '801', 1)",
            "INSERT INTO conferences (tenant_id, ad_hoc, started_at_ms, ended_at_ms)
             VALUES (1, 0, 0, 1)",
            "INSERT INTO conferences (tenant_id, room_name, ad_hoc, started_at_ms, ended_at_ms)
             VALUES (1, 'Board', 1, 0, 1)",
        ] {
            assert!(conn.execute(bad, []).is_err(), "{bad}");
        }
        // The record outlives the call (SET NULL) and the room; the tenant takes both.
        conn.execute_batch(
            "INSERT INTO conferences (tenant_id, room_id, room_name, ad_hoc, started_at_ms,
                                      ended_at_ms)
             VALUES (1, 1, 'Board', 0, 0, 1);
             INSERT INTO conference_participants (conference_id, seq, call_id, number,
                                                  moderator, joined_at_ms, left_at_ms,
                                                  end_reason)
             VALUES (1, 0, 1, '+4790000001', 0, 0, 1, 'left');",
        )
        .expect("record");
        assert!(conn
            .execute(
                "INSERT INTO conference_participants (conference_id, seq, number, moderator,
                                                      joined_at_ms, left_at_ms, end_reason)
                 VALUES (1, 1, '10', 0, 0, 1, 'wrong-pin')",
                []
            )
            .is_err());
        conn.execute("DELETE FROM calls", []).expect("calls");
        conn.execute("DELETE FROM conference_rooms", [])
            .expect("rooms");
        let (room, call): (Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT c.room_id, p.call_id FROM conferences c
                 JOIN conference_participants p ON p.conference_id = c.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("kept");
        assert_eq!((room, call), (None, None));
        conn.execute("DELETE FROM tenants", []).expect("tenant");
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM conferences)
                      + (SELECT count(*) FROM conference_participants)
                      + (SELECT count(*) FROM tenant_numbers)",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(left, 0);
    }

    #[test]
    fn v8_database_migrates_to_v9_with_call_commands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v8.db");
        let mut conn = open_writer(&path, BUSY_TIMEOUT).expect("open");
        for step in &MIGRATIONS[..8] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 8)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO tenants(name) VALUES ('Acme');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Ola', '10', 'u10', 'sip.example.no', 'x', 'y');
             INSERT INTO users(tenant_id, name, extension, sip_username, realm, ha1_md5,
                               ha1_sha256)
             VALUES (1, 'Kari', '11', 'u11', 'sip.example.no', 'x', 'y');
             INSERT INTO conference_rooms (tenant_id, name, extension)
             VALUES (1, 'Board', '800');
             INSERT INTO conference_commands (room_id, action, created_at_ms)
             VALUES (1, 'lock', 5);",
        )
        .expect("v8 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), 8);
        assert_eq!(user_version(&conn).expect("version"), 9);
        let count = |conn: &Connection, table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .expect("count")
        };
        assert_eq!(count(&conn, "conference_commands"), 1, "v8 data kept");
        for index in [
            "call_commands_unfinished",
            "call_commands_created",
            "call_commands_tenant",
            "call_commands_user",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                    [index],
                    |r| r.get(0),
                )
                .expect("index");
            assert_eq!(n, 1, "{index}");
        }

        conn.execute_batch(
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms)
             VALUES (1, 1, 'merge', 10);
             INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms, taken_at_ms,
                                        done_at_ms, result)
             VALUES (1, 2, 'merge', 10, 11, 12, 'not-anchored');",
        )
        .expect("commands");
        for bad in [
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms)
             VALUES (1, 1, 'transfer', 10)",
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms)
             VALUES (1, 99, 'merge', 10)",
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms)
             VALUES (99, 1, 'merge', 10)",
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms, done_at_ms,
                                        result)
             VALUES (1, 1, 'merge', 10, 12, 'not-running')",
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms, done_at_ms)
             VALUES (1, 1, 'merge', 10, 12)",
            "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms, result)
             VALUES (1, 1, 'merge', 10, 'done')",
        ] {
            assert!(conn.execute(bad, []).is_err(), "{bad}");
        }
        // A removed user takes its commands; a removed tenant takes the rest.
        conn.execute("DELETE FROM users WHERE id = 1", [])
            .expect("user removed");
        assert_eq!(count(&conn, "call_commands"), 1);
        conn.execute("DELETE FROM tenants", []).expect("tenant");
        assert_eq!(count(&conn, "call_commands"), 0);
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
