//! The SQL of per-user call settings (forwarding, presented number). A user without a
//! row has [`UserSettings::default`], so users created before schema v4 need no row.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::model::{Presentation, UserId, UserSettings};
use super::repo::constraint;
use super::validate;
use super::{Entity, Field, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// A user's settings; the defaults if none are stored, [`StoreError::NotFound`] if the
/// user does not exist.
pub(crate) fn user_settings(conn: &Connection, user: UserId) -> Result<UserSettings> {
    // One query tells both whether the user exists and whether it has a row.
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT s.forward_always, s.forward_busy, s.forward_no_answer, s.no_answer_s,
                    s.present
             FROM users u LEFT JOIN user_settings s ON s.user_id = u.id
             WHERE u.id = ?1",
        )?
        .query_row([user.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let (always, busy, no_answer, secs, present) = row.ok_or(StoreError::NotFound(Entity::User))?;
    let (Some(secs), Some(present)) = (secs, present) else {
        // Both columns are NOT NULL, so NULL here means the LEFT JOIN found no row.
        return Ok(UserSettings::default());
    };
    Ok(UserSettings {
        forward_always: always,
        forward_busy: busy,
        forward_no_answer: no_answer,
        no_answer_s: u32::try_from(secs).map_err(|_| StoreError::BadRow {
            column: "user_settings.no_answer_s",
        })?,
        present: present
            .parse::<Presentation>()
            .map_err(|_| StoreError::BadRow {
                column: "user_settings.present",
            })?,
    })
}

/// Checks the settings' own format, before any database access.
fn validate_settings(s: &UserSettings) -> Result<()> {
    for (field, target) in targets(s) {
        if let Some(t) = target {
            validate::forward_target(field, t)?;
        }
    }
    validate::no_answer_seconds(s.no_answer_s)
}

fn targets(s: &UserSettings) -> [(Field, Option<&str>); 3] {
    [
        (Field::ForwardAlways, s.forward_always.as_deref()),
        (Field::ForwardBusy, s.forward_busy.as_deref()),
        (Field::ForwardNoAnswer, s.forward_no_answer.as_deref()),
    ]
}

/// Stores a user's settings (insert or replace). Refuses malformed values and a target
/// that is the user's own extension or mobile (the call would come straight back).
pub(crate) fn set_user_settings(
    conn: &mut Connection,
    user: UserId,
    s: &UserSettings,
) -> Result<()> {
    validate_settings(s)?;
    // Immediate: the user's extension and mobile must not change between the check and
    // the write (another process, e.g. the CLI, may write the same file).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (extension, mobile): (String, Option<String>) = tx
        .query_row(
            "SELECT extension, mobile FROM users WHERE id = ?1",
            [user.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::NotFound(Entity::User))?;
    for (field, target) in targets(s) {
        let Some(t) = target else { continue };
        if t == extension || mobile.as_deref() == Some(t) {
            return Err(StoreError::Invalid {
                field,
                reason: "would forward to itself",
            });
        }
    }
    tx.execute(
        "INSERT INTO user_settings(user_id, forward_always, forward_busy, forward_no_answer,
                                   no_answer_s, present)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(user_id) DO UPDATE SET
             forward_always = excluded.forward_always,
             forward_busy = excluded.forward_busy,
             forward_no_answer = excluded.forward_no_answer,
             no_answer_s = excluded.no_answer_s,
             present = excluded.present",
        params![
            user.0,
            s.forward_always,
            s.forward_busy,
            s.forward_no_answer,
            i64::from(s.no_answer_s),
            s.present.as_str(),
        ],
    )
    .map_err(|e| constraint(e, Some(Entity::User)))?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::model::{NewUser, Password, TenantId};
    use super::super::{repo, schema};
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn =
            schema::open_writer(&dir.path().join("t.db"), schema::BUSY_TIMEOUT).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        (dir, conn)
    }

    fn add_user(conn: &Connection, tenant: TenantId, ext: &str, mobile: Option<&str>) -> UserId {
        repo::add_user(
            conn,
            &NewUser {
                tenant,
                name: format!("User {ext}"),
                extension: ext.into(),
                mobile: mobile.map(str::to_owned),
                sip_username: format!("u{ext}"),
                realm: "sip.example.no".into(),
                password: Password::new("secret-password"),
            },
        )
        .expect("user")
    }

    fn invalid_field(r: Result<()>) -> Option<(Field, &'static str)> {
        match r {
            Err(StoreError::Invalid { field, reason }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn defaults_then_upsert_roundtrip() {
        let (_d, mut conn) = db();
        let t = repo::add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, t, "10", Some("+4790000010"));
        let defaults = user_settings(&conn, u).expect("defaults");
        assert_eq!(defaults, UserSettings::default());
        assert_eq!(
            (
                defaults.no_answer_s,
                defaults.present,
                defaults.forward_busy
            ),
            (20, Presentation::Own, None)
        );

        let first = UserSettings {
            forward_always: None,
            forward_busy: Some("11".into()),
            forward_no_answer: Some("+4791234567".into()),
            no_answer_s: 5,
            present: Presentation::Hidden,
        };
        set_user_settings(&mut conn, u, &first).expect("insert");
        assert_eq!(user_settings(&conn, u).expect("read"), first);

        // The second write replaces every column, including back to NULL.
        let second = UserSettings {
            forward_always: Some("+4721000000".into()),
            forward_busy: None,
            forward_no_answer: None,
            no_answer_s: 120,
            present: Presentation::Main,
        };
        set_user_settings(&mut conn, u, &second).expect("update");
        assert_eq!(user_settings(&conn, u).expect("read"), second);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM user_settings", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 1, "upsert, not a second row");
    }

    #[test]
    fn unknown_user_is_not_found() {
        let (_d, mut conn) = db();
        assert!(matches!(
            user_settings(&conn, UserId(42)),
            Err(StoreError::NotFound(Entity::User))
        ));
        assert!(matches!(
            set_user_settings(&mut conn, UserId(42), &UserSettings::default()),
            Err(StoreError::NotFound(Entity::User))
        ));
    }

    /// Default settings with one forwarding target set.
    fn with_target(field: Field, target: &str) -> UserSettings {
        let mut s = UserSettings::default();
        let slot = match field {
            Field::ForwardAlways => &mut s.forward_always,
            Field::ForwardBusy => &mut s.forward_busy,
            _ => &mut s.forward_no_answer,
        };
        *slot = Some(target.to_owned());
        s
    }

    #[test]
    fn validation_names_each_field() {
        let (_d, mut conn) = db();
        let t = repo::add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, t, "10", None);
        for (field, bad) in [
            (Field::ForwardAlways, "abc"),
            (Field::ForwardBusy, "+47"),
            (Field::ForwardBusy, "1234567"),
            (Field::ForwardNoAnswer, "1"),
            (Field::ForwardNoAnswer, ""),
        ] {
            assert_eq!(
                invalid_field(set_user_settings(&mut conn, u, &with_target(field, bad)))
                    .map(|(f, _)| f),
                Some(field),
                "{bad:?}"
            );
        }
        for secs in [0, 4, 121] {
            let s = UserSettings {
                no_answer_s: secs,
                ..UserSettings::default()
            };
            assert_eq!(
                invalid_field(set_user_settings(&mut conn, u, &s)).map(|(f, _)| f),
                Some(Field::NoAnswerSeconds),
                "{secs}"
            );
        }
        assert_eq!(
            user_settings(&conn, u).expect("read"),
            UserSettings::default(),
            "nothing refused was stored"
        );
        assert!(matches!(
            "other".parse::<Presentation>(),
            Err(StoreError::Invalid {
                field: Field::Presentation,
                ..
            })
        ));
        for p in [Presentation::Own, Presentation::Main, Presentation::Hidden] {
            assert_eq!(p.as_str().parse::<Presentation>().expect("parse"), p);
        }
    }

    #[test]
    fn self_forward_is_refused() {
        let (_d, mut conn) = db();
        let t = repo::add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, t, "10", Some("+4790000010"));
        for field in [
            Field::ForwardAlways,
            Field::ForwardBusy,
            Field::ForwardNoAnswer,
        ] {
            for own in ["10", "+4790000010"] {
                assert_eq!(
                    invalid_field(set_user_settings(&mut conn, u, &with_target(field, own))),
                    Some((field, "would forward to itself")),
                    "{field} {own}"
                );
            }
        }
        // Another user's extension and mobile are fine.
        let other = UserSettings {
            forward_always: Some("11".into()),
            forward_busy: Some("+4790000011".into()),
            ..UserSettings::default()
        };
        set_user_settings(&mut conn, u, &other).expect("other targets");
        assert_eq!(user_settings(&conn, u).expect("read"), other);
    }

    #[test]
    fn removing_the_user_removes_its_settings() {
        let (_d, mut conn) = db();
        let t = repo::add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, t, "10", None);
        let keep = add_user(&conn, t, "11", None);
        let s = UserSettings {
            forward_busy: Some("12".into()),
            ..UserSettings::default()
        };
        set_user_settings(&mut conn, u, &s).expect("set");
        set_user_settings(&mut conn, keep, &s).expect("set");
        repo::remove_user(&conn, u).expect("remove");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM user_settings", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 1);
        assert!(matches!(
            user_settings(&conn, u),
            Err(StoreError::NotFound(Entity::User))
        ));
        assert_eq!(user_settings(&conn, keep).expect("kept"), s);
        // And through a forced tenant removal.
        repo::remove_tenant(&mut conn, t, true).expect("remove tenant");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM user_settings", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 0);
    }
}
