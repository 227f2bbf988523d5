//! SIPp scenarios (tests/sipp/*.xml) against the real daemon: the registrar as an
//! independent, widely used SIP tool sees it. SIPp 3.6 computes MD5 digests only, so these
//! tests run the phones profile with MD5 challenges ([`MD5_FIRST_PROFILE_LINES`]); the
//! SHA-256 path is covered by tests/registrar.rs with the harness's own client.
//!
//! `SENTRALBORD_SKIP_SIPP=1` skips them with a printed notice; otherwise a missing `sipp`
//! fails them (scripts/test.sh installs it).

mod common;

use common::{
    run_sipp, sipp_enabled, sipp_user_vars, SippTransport, TestEnv, User, MD5_FIRST_PROFILE_LINES,
};

/// Runs `file` once against the phones listener of `transport`. `credentials` sets the
/// scenario's user/password/domain variables; scenarios that authenticate run with MD5
/// challenges, the others (no variables) against the default profile.
fn scenario(test: &str, file: &str, transport: SippTransport, credentials: Option<(&str, &str)>) {
    if !sipp_enabled(test) {
        return;
    }
    let env = match credentials {
        Some(_) => TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES),
        None => TestEnv::new(),
    };
    env.provision(&[User::alice()]);
    let daemon = env.start();
    let target = match transport {
        SippTransport::Udp => daemon.phones_udp(),
        SippTransport::Tcp => daemon.phones_tcp(),
    };
    let vars = credentials.map(|(user, password)| sipp_user_vars(user, password));
    let run = run_sipp(
        &env,
        file,
        target,
        transport,
        vars.as_ref().map_or(&[][..], |v| &v[..]),
    );
    run.assert_success(file);
}

fn alice_password() -> String {
    User::alice().password
}

#[test]
fn sipp_options_udp() {
    scenario("sipp_options_udp", "options.xml", SippTransport::Udp, None);
}

#[test]
fn sipp_options_tcp() {
    scenario("sipp_options_tcp", "options.xml", SippTransport::Tcp, None);
}

#[test]
fn sipp_register_md5_udp() {
    scenario(
        "sipp_register_md5_udp",
        "register_md5.xml",
        SippTransport::Udp,
        Some(("alice", &alice_password())),
    );
}

#[test]
fn sipp_register_md5_tcp() {
    scenario(
        "sipp_register_md5_tcp",
        "register_md5.xml",
        SippTransport::Tcp,
        Some(("alice", &alice_password())),
    );
}

#[test]
fn sipp_reregister() {
    scenario(
        "sipp_reregister",
        "reregister.xml",
        SippTransport::Udp,
        Some(("alice", &alice_password())),
    );
}

#[test]
fn sipp_unregister() {
    scenario(
        "sipp_unregister",
        "unregister.xml",
        SippTransport::Udp,
        Some(("alice", &alice_password())),
    );
}

#[test]
fn sipp_wrong_password_is_rejected_with_401() {
    scenario(
        "sipp_wrong_password_is_rejected_with_401",
        "register_rejected.xml",
        SippTransport::Udp,
        Some(("alice", "not-her-password")),
    );
}

#[test]
fn sipp_unknown_user_is_rejected_with_401() {
    scenario(
        "sipp_unknown_user_is_rejected_with_401",
        "register_rejected.xml",
        SippTransport::Udp,
        Some(("nobody", "whatever")),
    );
}

#[test]
fn sipp_min_expires_423() {
    scenario(
        "sipp_min_expires_423",
        "min_expires.xml",
        SippTransport::Udp,
        Some(("alice", &alice_password())),
    );
}

#[test]
fn sipp_bad_message_400() {
    scenario(
        "sipp_bad_message_400",
        "bad_message.xml",
        SippTransport::Udp,
        None,
    );
}
