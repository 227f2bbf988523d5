//! Call-test helpers: trunk profiles, numbers and mobiles, SIPp phones that register
//! and then answer on the same socket, and the call log as the CLI prints it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{
    run_sipp_with, sipp_user_vars, spawn_sipp, wait_udp_bound, Daemon, SippChild, SippOptions,
    TestEnv, User, REALM,
};

/// How long a SIPp phone or carrier waits for its whole call (SIPp `-timeout`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a background SIPp may take to bind its port.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// A trunk profile on 127.0.0.1 port 0 (UDP and TCP), trusting `trusted` (CIDR strings),
/// numbering for Norway (country code 47, no national prefix), and sending calls to the
/// carrier at `outbound_proxy` when given.
pub fn trunk_profile(trusted: &[&str], outbound_proxy: Option<SocketAddr>) -> String {
    let trusted = trusted
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // The SIPp carriers play one scenario and cannot also answer OPTIONS pings, so the
    // ping is off here (the engine's unit tests cover it).
    let proxy = outbound_proxy
        .map(|p| format!("outbound_proxy = \"{p}\"\noptions_ping_s = 0\n"))
        .unwrap_or_default();
    format!(
        "name = \"trunk\"\n\
         kind = \"trunk\"\n\
         trusted = [{trusted}]\n\
         {proxy}\n\
         [numbering]\n\
         country_code = \"47\"\n\
         national_prefix = \"\"\n\
         international_prefix = \"00\"\n\
         \n\
         [[listen]]\n\
         address = \"127.0.0.1:0\"\n\
         transports = [\"udp\", \"tcp\"]\n"
    )
}

impl TestEnv {
    /// `sentralbord tenant number add <tenant> <number> --kind <kind>`.
    pub fn add_number(&self, tenant: &str, number: &str, kind: &str) {
        self.cli(
            &["tenant", "number", "add", tenant, number, "--kind", kind],
            None,
        );
    }

    /// `sentralbord user add ... --mobile <mobile> --password-stdin`.
    pub fn add_user_with_mobile(&self, u: &User, mobile: &str) {
        self.cli(
            &[
                "user",
                "add",
                "--tenant",
                &u.tenant,
                "--name",
                &u.name,
                "--extension",
                &u.extension,
                "--mobile",
                mobile,
                "--username",
                &u.username,
                "--realm",
                &u.realm,
                "--password-stdin",
            ],
            Some(&format!("{}\n", u.password)),
        );
    }

    /// The call log rows of `tenant`, as `sentralbord calls list --tenant` prints them.
    pub fn call_log(&self, tenant: &str) -> Vec<CallLogRow> {
        let out = self.cli(&["calls", "list", "--tenant", tenant], None);
        parse_call_log(&out)
    }
}

impl Daemon {
    /// The trunk profile's UDP address.
    pub fn trunk_udp(&self) -> SocketAddr {
        self.addr("trunk", "udp")
    }
}

/// One row of `sentralbord calls list --tenant <t>` (the columns it prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLogRow {
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// `Name <number>` or the number.
    pub caller: String,
    /// `Name <number>` or the number.
    pub callee: String,
    /// `answered`, `missed`, `busy`, `failed` or `cancelled`.
    pub outcome: String,
    /// Talk time `m:ss`, or `-`.
    pub talk: String,
    /// `Name (extension)` or `-`.
    pub answered_by: String,
}

/// Parses the table `calls list --tenant` prints: columns start where their headers start
/// (cells are padded to the widest value). "no calls" gives no rows.
pub fn parse_call_log(out: &str) -> Vec<CallLogRow> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    if header.trim() == "no calls" {
        return Vec::new();
    }
    let header: Vec<char> = header.chars().collect();
    let names = [
        "START",
        "DIRECTION",
        "CALLER",
        "CALLEE",
        "OUTCOME",
        "TALK",
        "ANSWERED BY",
        "FORWARD",
    ];
    let text: String = header.iter().collect();
    let starts: Vec<usize> = names
        .iter()
        .map(|n| {
            let byte = text
                .find(n)
                .unwrap_or_else(|| panic!("no {n} column in `calls list` output:\n{out}"));
            text[..byte].chars().count()
        })
        .collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            let cell = |i: usize| -> String {
                let from = starts[i].min(chars.len());
                let to = starts
                    .get(i + 1)
                    .map_or(chars.len(), |&e| e.min(chars.len()));
                chars[from..to].iter().collect::<String>().trim().to_owned()
            };
            CallLogRow {
                direction: cell(1),
                caller: cell(2),
                callee: cell(3),
                outcome: cell(4),
                talk: cell(5),
                answered_by: cell(6),
            }
        })
        .collect()
}

/// A phone played by SIPp: registered from a fixed UDP port with `register_md5.xml`, then
/// a UAS scenario on the same port answers the daemon's INVITEs (the daemon sends to the
/// flow a binding was registered from).
pub struct Phone {
    /// The UDP port it registered from and answers on.
    pub port: u16,
    /// The user it registered as.
    pub user: User,
}

impl Phone {
    /// Registers `user` from a fresh loopback UDP port (panics with SIPp's logs unless
    /// the daemon answers 200). When this returns the binding exists: the daemon answered
    /// the REGISTER only after applying it.
    pub fn register(env: &TestEnv, daemon: &Daemon, user: &User) -> Phone {
        let port = super::free_udp_port();
        let mut opts = SippOptions::new().local(IpAddr::V4(Ipv4Addr::LOCALHOST), Some(port));
        for (k, v) in sipp_user_vars(&user.username, &user.password) {
            opts = opts.var(k, v);
        }
        run_sipp_with(env, "register_md5.xml", Some(daemon.phones_udp()), &opts)
            .assert_success(&format!("register_md5.xml as {}", user.username));
        Phone {
            port,
            user: user.clone(),
        }
    }

    /// Starts UAS `scenario` on the phone's port and waits until it listens.
    pub fn answer_with(&self, env: &TestEnv, scenario: &str, vars: &[(&str, &str)]) -> SippChild {
        uas(env, scenario, self.port, vars)
    }
}

/// Starts UAS `scenario` on 127.0.0.1:`port` (one call, [`CALL_TIMEOUT`]) and waits until
/// it has bound the port.
pub fn uas(env: &TestEnv, scenario: &str, port: u16, vars: &[(&str, &str)]) -> SippChild {
    let mut opts = SippOptions::new()
        .local(IpAddr::V4(Ipv4Addr::LOCALHOST), Some(port))
        .auth_uri(None)
        .timeout(CALL_TIMEOUT);
    for (k, v) in vars {
        opts = opts.var(k, v);
    }
    let mut child = spawn_sipp(env, scenario, None, &opts);
    wait_udp_bound(&mut child, port, BIND_TIMEOUT);
    child
}

/// `-set` variables for a phone call from `caller` to extension `callee`: the caller's
/// credentials in [`REALM`] and the dialled extension.
pub fn caller_vars(caller: &User, callee: &str) -> Vec<(String, String)> {
    vec![
        ("user".to_owned(), caller.username.clone()),
        ("password".to_owned(), caller.password.clone()),
        ("domain".to_owned(), REALM.to_owned()),
        ("callee".to_owned(), callee.to_owned()),
    ]
}

/// Options for a caller scenario: one call from 127.0.0.1, [`CALL_TIMEOUT`], and the
/// digest-uri taken from the Request-URI (`sip:<ext>@<realm>`), as a phone hashes it
/// for an INVITE.
pub fn caller_options(vars: &[(String, String)]) -> SippOptions {
    let mut opts = SippOptions::new().auth_uri(None).timeout(CALL_TIMEOUT);
    for (k, v) in vars {
        opts = opts.var(k, v);
    }
    opts
}

/// One message of a SIPp `-trace_msg` file: headers only (the tests look at no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// Sent by SIPp (`true`) or received by it.
    pub sent: bool,
    /// The request or status line.
    pub start: String,
    /// Headers in order: (name, value), both trimmed.
    pub headers: Vec<(String, String)>,
}

impl Traced {
    /// The status code of a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        self.start
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
    }

    /// The first value of header `name` (case-insensitive, full names only).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The CSeq header as (number, method).
    pub fn cseq(&self) -> Option<(u32, String)> {
        let mut it = self.header("CSeq")?.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?.to_owned()))
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<String> {
        tag_param(self.header("To")?)
    }
}

/// The `tag` parameter of a From/To value (after the name-addr's `>` when there is one).
pub fn tag_param(value: &str) -> Option<String> {
    let params = value.rsplit_once('>').map_or(value, |(_, p)| p);
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| v.trim().to_owned())
    })
}

/// Parses a SIPp message trace: blocks that start with a line of dashes and a timestamp,
/// then `<transport> message sent|received ...`, a blank line, and the message.
pub fn parse_trace(trace: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in trace
        .split("-----------------------------------------------")
        .skip(1)
    {
        let mut lines = block.lines().map(|l| l.trim_end_matches('\r'));
        let _timestamp = lines.next();
        let Some(what) = lines.next() else { continue };
        let sent = what.contains("message sent");
        if !sent && !what.contains("message received") {
            continue;
        }
        let mut lines = lines.skip_while(|l| l.trim().is_empty());
        let Some(start) = lines.next() else { continue };
        let headers = lines
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        out.push(Traced {
            sent,
            start: start.trim().to_owned(),
            headers,
        });
    }
    out
}
