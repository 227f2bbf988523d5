//! `sentralbord calls ...`: the call log. Numbers and names are personal data; this is
//! an administrator's tool, so it prints them.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::{format_date, tenant_by_name, with_store, write_table, CliError};
use crate::store::model::MediaStatsRecord;
use crate::store::{CallFilter, CallSummary};

/// `sentralbord calls ...`: read the call log.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CallsCommand {
    /// List calls, newest first.
    List {
        /// Only this tenant's calls.
        #[arg(long)]
        tenant: Option<String>,
        /// Only calls this user took part in, as TENANT:EXTENSION.
        #[arg(long, value_name = "TENANT:EXTENSION")]
        user: Option<String>,
        /// At most this many calls.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Runs a calls command against the database at `db_path`, printing to stdout.
pub fn run_calls(cmd: CallsCommand, db_path: &Path) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_calls_with(cmd, db_path, &mut out)
}

/// Runs a calls command, writing results to `out`.
pub fn run_calls_with(
    cmd: CallsCommand,
    db_path: &Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let CallsCommand::List {
        tenant,
        user,
        limit,
    } = cmd;
    // Checked before opening the store, like every other argument error.
    let user = user
        .map(|u| match u.rsplit_once(':') {
            // Split at the last ':' : extensions are digits, tenant names may hold ':'.
            Some((t, ext)) if !t.is_empty() && !ext.is_empty() => {
                Ok((t.to_owned(), ext.to_owned()))
            }
            _ => Err(CliError::BadUserRef(u)),
        })
        .transpose()?;
    with_store(db_path, |h| {
        let tenant_id = tenant
            .as_deref()
            .map(|name| tenant_by_name(h, name))
            .transpose()?
            .map(|t| t.id);
        let user_id = match user {
            None => None,
            Some((tenant, extension)) => {
                let t = tenant_by_name(h, &tenant)?;
                let u = h
                    .find_user(t.id, &extension)
                    .wait()?
                    .ok_or(CliError::UserNotFound {
                        tenant: t.name,
                        extension,
                    })?;
                Some(u.id)
            }
        };
        let calls = h
            .list_calls(CallFilter {
                tenant: tenant_id,
                user: user_id,
                since_ms: None,
                limit,
            })
            .wait()?;
        if calls.is_empty() {
            return writeln!(out, "no calls").map_err(CliError::Output);
        }
        let with_tenant = tenant_id.is_none();
        let rows = calls.iter().map(|c| row(c, with_tenant)).collect();
        let mut headers = vec!["START"];
        if with_tenant {
            headers.push("TENANT");
        }
        headers.extend([
            "DIRECTION",
            "CALLER",
            "CALLEE",
            "OUTCOME",
            "TALK",
            "ANSWERED BY",
            "FORWARD",
            // Last, so scripts that cut the table by header positions keep working.
            "MEDIA",
        ]);
        write_table(out, &headers, rows)
    })
}

fn row(c: &CallSummary, with_tenant: bool) -> Vec<String> {
    let mut cells = vec![format_timestamp_ms(c.started_at_ms)];
    if with_tenant {
        cells.push(c.tenant_name.clone().unwrap_or_else(|| "-".into()));
    }
    cells.extend([
        c.direction.to_string(),
        party(c.caller_name.as_deref(), &c.caller_number),
        party(c.callee_name.as_deref(), &c.callee_number),
        c.outcome.to_string(),
        if c.answered_at_ms.is_some() {
            format_duration_ms(c.duration_ms)
        } else {
            "-".into()
        },
        c.answered_by
            .as_ref()
            .map_or_else(|| "-".into(), |u| format!("{} ({})", u.name, u.extension)),
        c.forward_reason
            .map_or_else(|| "-".into(), |r| r.as_str().to_owned()),
        media_summary(&c.media),
    ]);
    cells
}

/// The MEDIA cell: the codecs (both when the sides differ, e.g. `PCMA/PCMU`; `?` when
/// none was negotiated), the worst side's packet loss and the worst side's jitter, e.g.
/// `PCMU 0.4% 12ms`; `-` when the call's media was not anchored.
pub(super) fn media_summary(media: &[MediaStatsRecord]) -> String {
    if media.is_empty() {
        return "-".into();
    }
    let mut codecs: Vec<&str> = Vec::new();
    for codec in media.iter().filter_map(|m| m.codec.as_deref()) {
        if !codecs.contains(&codec) {
            codecs.push(codec);
        }
    }
    let codecs = if codecs.is_empty() {
        "?".to_owned()
    } else {
        codecs.join("/")
    };
    let loss = media
        .iter()
        .map(MediaStatsRecord::loss_percent)
        .fold(0.0, f64::max);
    let jitter = media.iter().map(|m| m.jitter_ms).fold(0.0, f64::max);
    format!("{codecs} {loss:.1}% {jitter:.0}ms")
}

/// "Name <number>", or the number alone; "-" when there is neither.
fn party(name: Option<&str>, number: &str) -> String {
    match (name, number.is_empty()) {
        (Some(n), false) => format!("{n} <{number}>"),
        (Some(n), true) => n.to_owned(),
        (None, false) => number.to_owned(),
        (None, true) => "-".into(),
    }
}

/// Formats Unix milliseconds as UTC RFC 3339 without sub-seconds, e.g.
/// `2024-05-01T08:30:00Z`.
pub(super) fn format_timestamp_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day_secs = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(secs),
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
}

/// Formats a duration as `m:ss`, or `h:mm:ss` from an hour up (whole seconds, cut).
pub(super) fn format_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}
