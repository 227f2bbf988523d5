//! Call commands against a temp-dir SQLite: the round trip (sent, taken once, answered
//! once), expiry by the CLI and by age, unknown tenants, users and commands, a user of
//! another tenant, the cascades, the schema's refusals and the retention sweep.

use super::super::calllog::delete_calls_before;
use super::super::model::{NewUser, Password};
use super::super::repo::{add_tenant, add_user, remove_tenant, remove_user};
use super::super::schema;
use super::*;

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn =
        schema::open_writer(&dir.path().join("c.db"), schema::BUSY_TIMEOUT).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    (dir, conn)
}

fn user(conn: &Connection, t: TenantId, ext: &str) -> UserId {
    add_user(
        conn,
        &NewUser {
            tenant: t,
            name: format!("User {ext}"),
            extension: ext.into(),
            mobile: None,
            sip_username: format!("t{}u{ext}", t.0),
            realm: "sip.example.no".into(),
            password: Password::new("long-enough"),
        },
    )
    .expect("user")
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM call_commands", [], |r| r.get(0))
        .expect("count")
}

fn merge(conn: &Connection, t: TenantId, u: UserId, now_ms: i64) -> CallCommandId {
    send_call_command(conn, t, u, CallAction::Merge, now_ms).expect("send")
}

const T0: i64 = 1_000_000;

#[test]
fn round_trip_takes_once_and_answers_once() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let ola = user(&conn, acme, "10");
    assert!(pending_call_commands(&mut conn, T0)
        .expect("poll")
        .is_empty());

    let id = merge(&conn, acme, ola, T0);
    let sent = CallCommand {
        id,
        tenant: acme,
        user: ola,
        action: CallAction::Merge,
        created_at_ms: T0,
    };
    assert_eq!(
        call_command(&conn, id).expect("status"),
        CallCommandStatus {
            command: sent.clone(),
            taken_at_ms: None,
            done_at_ms: None,
            result: None
        }
    );
    assert_eq!(
        pending_call_commands(&mut conn, T0 + 500).expect("poll"),
        [sent]
    );
    assert!(
        pending_call_commands(&mut conn, T0 + 600)
            .expect("poll")
            .is_empty(),
        "taken once"
    );
    // The CLI giving up now cannot expire it: the daemon has it and will answer.
    let s = expire_call_command(&conn, id, T0 + 700).expect("expire");
    assert_eq!((s.taken_at_ms, s.result), (Some(T0 + 500), None));
    assert!(
        finish_call_command(&conn, id, CallCommandResult::NotTwoCalls, T0 + 800).expect("finish")
    );
    assert!(
        !finish_call_command(&conn, id, CallCommandResult::Done, T0 + 900).expect("again"),
        "answered once"
    );
    let s = call_command(&conn, id).expect("status");
    assert_eq!(
        (s.done_at_ms, s.result),
        (Some(T0 + 800), Some(CallCommandResult::NotTwoCalls))
    );
    // Finished commands are not polled again.
    assert!(pending_call_commands(&mut conn, T0 + 1_000)
        .expect("poll")
        .is_empty());
}

#[test]
fn expired_commands_are_never_taken() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let ola = user(&conn, acme, "10");

    // Expired by the CLI before the daemon took it: never applied, never answered.
    let gone = merge(&conn, acme, ola, T0);
    let s = expire_call_command(&conn, gone, T0 + 5_000).expect("expire");
    assert_eq!(
        (s.done_at_ms, s.result),
        (Some(T0 + 5_000), Some(CallCommandResult::Expired))
    );
    assert!(pending_call_commands(&mut conn, T0 + 5_100)
        .expect("poll")
        .is_empty());
    assert!(!finish_call_command(&conn, gone, CallCommandResult::Done, T0 + 5_200).expect("late"));

    // Left behind by a CLI that died: a daemon polling later than the maximum age
    // expires it instead of applying it, and takes the fresh one.
    let stale = merge(&conn, acme, ola, T0);
    let fresh = merge(&conn, acme, ola, T0 + 9_000);
    let taken = pending_call_commands(&mut conn, T0 + COMMAND_MAX_AGE_MS + 1).expect("poll");
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), [fresh]);
    let s = call_command(&conn, stale).expect("status");
    assert_eq!(
        (s.taken_at_ms, s.done_at_ms, s.result),
        (
            None,
            Some(T0 + COMMAND_MAX_AGE_MS + 1),
            Some(CallCommandResult::Expired)
        )
    );
}

#[test]
fn unknown_tenants_users_and_commands_are_named() {
    let (_d, conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let ola = user(&conn, acme, "10");
    let kari = user(&conn, other, "10");
    let send = |t, u| send_call_command(&conn, t, u, CallAction::Merge, T0);
    assert!(matches!(
        send(TenantId(99), ola),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
    assert!(matches!(
        send(acme, UserId(99)),
        Err(StoreError::NotFound(Entity::User))
    ));
    // Another tenant's user is not this tenant's.
    assert!(matches!(
        send(acme, kari),
        Err(StoreError::NotFound(Entity::User))
    ));
    assert_eq!(count(&conn), 0, "nothing sent");
    assert!(matches!(
        call_command(&conn, CallCommandId(42)),
        Err(StoreError::NotFound(Entity::CallCommand))
    ));
    assert!(matches!(
        expire_call_command(&conn, CallCommandId(42), T0),
        Err(StoreError::NotFound(Entity::CallCommand))
    ));
    assert!(
        !finish_call_command(&conn, CallCommandId(42), CallCommandResult::Done, T0)
            .expect("unknown")
    );
}

#[test]
fn removed_users_and_tenants_take_their_commands() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let ola = user(&conn, acme, "10");
    let kari = user(&conn, acme, "11");
    let taken = merge(&conn, acme, ola, T0);
    assert_eq!(
        pending_call_commands(&mut conn, T0 + 100)
            .expect("poll")
            .len(),
        1
    );
    let waiting = merge(&conn, acme, kari, T0 + 200);

    remove_user(&conn, ola).expect("remove");
    assert!(matches!(
        call_command(&conn, taken),
        Err(StoreError::NotFound(Entity::CallCommand))
    ));
    assert!(
        !finish_call_command(&conn, taken, CallCommandResult::Done, T0 + 300).expect("gone"),
        "the daemon's late answer is dropped"
    );
    assert_eq!(
        call_command(&conn, waiting).expect("kept").command.user,
        kari
    );

    remove_tenant(&mut conn, acme, true).expect("remove tenant");
    assert_eq!(count(&conn), 0);
    assert!(pending_call_commands(&mut conn, T0 + 400)
        .expect("poll")
        .is_empty());
}

#[test]
fn schema_refuses_bad_results_and_unknown_actions() {
    let (_d, conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let ola = user(&conn, acme, "10");
    let id = merge(&conn, acme, ola, T0);
    for bad in [
        // A result of the conference controls, not of call commands.
        "UPDATE call_commands SET done_at_ms = 1, result = 'not-running'",
        // A result without its time, a time without its result.
        "UPDATE call_commands SET result = 'done'",
        "UPDATE call_commands SET done_at_ms = 1",
        "UPDATE call_commands SET action = 'transfer'",
    ] {
        assert!(conn.execute(bad, []).is_err(), "{bad}");
    }
    assert_eq!(call_command(&conn, id).expect("status").result, None);
    for r in CallCommandResult::ALL {
        assert_eq!(r.as_str().parse::<CallCommandResult>().ok(), Some(*r));
        // Every result the daemon can record is one the schema accepts.
        let fresh = merge(&conn, acme, ola, T0);
        assert!(finish_call_command(&conn, fresh, *r, T0 + 1).expect("finish"));
        assert_eq!(call_command(&conn, fresh).expect("status").result, Some(*r));
    }
    assert!(matches!(
        "not-running".parse::<CallCommandResult>(),
        Err(StoreError::BadRow {
            column: "call_commands.result"
        })
    ));
}

#[test]
fn retention_sweep_removes_old_commands() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let ola = user(&conn, acme, "10");
    let old = merge(&conn, acme, ola, 5_000);
    let new = merge(&conn, acme, ola, 150_000);
    delete_calls_before(&mut conn, 100_000).expect("sweep");
    assert!(call_command(&conn, old).is_err());
    assert_eq!(call_command(&conn, new).expect("kept").command.id, new);
    assert_eq!(count(&conn), 1);
}
