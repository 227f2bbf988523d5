//! Black-box registrar tests with the harness's own SIP client (tests/common/sip.rs), which
//! computes digests itself: the SHA-256 path SIPp 3.6 cannot do, the exact shape of the
//! challenges, the indistinguishable 401s, stale nonces, and bindings across a restart.
//! The daemon is the real binary, provisioned through its CLI, on loopback port 0.

mod common;

use std::thread;
use std::time::Duration;

use common::sip::{
    authorization, challenge_for, challenges, register_with_digest, Algorithm, Credentials,
    Register, SipClient, SipMessage, TcpClient, UdpClient,
};
use common::{TestEnv, User, MD5_FIRST_PROFILE_LINES, REALM};

/// Provisions alice and bob, starts the daemon.
fn started(env: &TestEnv) -> common::Daemon {
    env.provision(&[User::alice(), User::bob()]);
    env.start()
}

/// The URI inside `<...>` of a Contact value we sent.
fn uri_of(contact: &str) -> String {
    contact
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// Whether `resp` lists a binding for `uri` (URIs compared case-insensitively, RFC 3261
/// s19.1.4 being stricter than needed here), and its expires.
fn binding_expires(resp: &SipMessage, uri: &str) -> Option<u64> {
    resp.contacts()
        .into_iter()
        .find(|c| c.uri.eq_ignore_ascii_case(uri))
        .map(|c| {
            c.expires
                .unwrap_or_else(|| panic!("binding without expires in:\n{}", resp.text()))
        })
}

#[test]
fn unauthenticated_register_is_challenged_sha256_first_then_md5() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let reg = Register::new("alice", REALM, &client);
    let resp = client.request(&reg.to_bytes(&client));
    assert_eq!(resp.status(), 401, "{}", resp.text());
    let raw_headers = resp.headers("WWW-Authenticate");
    assert_eq!(
        raw_headers.len(),
        2,
        "two challenges expected:\n{}",
        resp.text()
    );
    let ch = challenges(&resp);
    assert_eq!(
        ch.len(),
        2,
        "both must be Digest challenges:\n{}",
        resp.text()
    );
    // RFC 8760 s2.4: most preferred algorithm first.
    assert_eq!(
        ch[0].algorithm(),
        Some(Algorithm::Sha256),
        "{}",
        resp.text()
    );
    assert_eq!(ch[1].algorithm(), Some(Algorithm::Md5), "{}", resp.text());
    for c in &ch {
        assert_eq!(c.get("realm"), Some(REALM));
        assert!(
            c.get("nonce").is_some_and(|n| n.len() >= 16),
            "nonce too short: {c:?}"
        );
        assert!(c.offers_qop_auth(), "qop=auth expected: {c:?}");
        assert!(!c.is_stale(), "a first challenge is not stale: {c:?}");
    }
    // The algorithm token is written exactly as RFC 8760 spells it.
    assert!(
        raw_headers[0].contains("algorithm=SHA-256"),
        "{}",
        raw_headers[0]
    );
    assert!(
        raw_headers[1].contains("algorithm=MD5"),
        "{}",
        raw_headers[1]
    );
}

#[test]
fn a_profile_restricted_to_md5_challenges_with_md5_only() {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let mut reg = Register::new("alice", REALM, &client);
    let (first, ok) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Md5,
        &User::alice().password,
    );
    let algorithms: Vec<_> = challenges(&first).iter().map(|c| c.algorithm()).collect();
    assert_eq!(algorithms, vec![Some(Algorithm::Md5)], "{}", first.text());
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

#[test]
fn sha256_register_over_udp_binds_the_contact_and_a_refresh_keeps_one_binding() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let mut reg = Register::new("alice", REALM, &client);
    let contact = uri_of(reg.contact.as_deref().unwrap_or_default());
    let (_, ok) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Sha256,
        &User::alice().password,
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let expires = binding_expires(&ok, &contact)
        .unwrap_or_else(|| panic!("our binding is missing:\n{}", ok.text()));
    assert!(
        (60..=600).contains(&expires),
        "granted expires {expires} outside 60..=600"
    );

    // Refresh: same Call-ID, higher CSeq (RFC 3261 s10.2.4): still exactly one binding.
    let (_, again) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Sha256,
        &User::alice().password,
    );
    assert_eq!(again.status(), 200, "{}", again.text());
    let ours: Vec<_> = again
        .contacts()
        .into_iter()
        .filter(|c| c.uri.eq_ignore_ascii_case(&contact))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "a refresh must not duplicate the binding:\n{}",
        again.text()
    );
}

#[test]
fn md5_register_over_tcp_binds_the_contact() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = TcpClient::connect(daemon.phones_tcp());
    let mut reg = Register::new("bob", REALM, &client);
    let contact = uri_of(reg.contact.as_deref().unwrap_or_default());
    let (_, ok) =
        register_with_digest(&mut client, &mut reg, Algorithm::Md5, &User::bob().password);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(
        binding_expires(&ok, &contact).is_some(),
        "our binding is missing:\n{}",
        ok.text()
    );
}

/// The parts of a response that do not echo the request: status, reason, header names in
/// order, and the values of the headers the daemon writes itself (challenge nonces masked).
fn fingerprint(resp: &SipMessage) -> Vec<String> {
    const ECHOED: [&str; 5] = ["via", "from", "to", "call-id", "cseq"];
    let mut out = vec![format!("{:?}", resp.start)];
    for (name, value) in &resp.headers {
        let lname = name.to_ascii_lowercase();
        if ECHOED.contains(&lname.as_str()) {
            out.push(lname);
        } else if lname == "www-authenticate" {
            out.push(format!("{lname}: {}", mask_param(value, "nonce")));
        } else {
            out.push(format!("{lname}: {value}"));
        }
    }
    out
}

fn mask_param(value: &str, param: &str) -> String {
    let key = format!("{param}=\"");
    match value.find(&key) {
        Some(i) => {
            let start = i + key.len();
            let end = value[start..].find('"').map_or(value.len(), |j| start + j);
            format!("{}***{}", &value[..start], &value[end..])
        }
        None => value.to_owned(),
    }
}

#[test]
fn wrong_password_and_unknown_user_get_indistinguishable_401s() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());

    let mut wrong = Register::new("alice", REALM, &client);
    let (_, wrong_resp) = register_with_digest(
        &mut client,
        &mut wrong,
        Algorithm::Sha256,
        "not-her-password",
    );
    let mut unknown = Register::new("nobody", REALM, &client);
    let (first, unknown_resp) =
        register_with_digest(&mut client, &mut unknown, Algorithm::Sha256, "whatever");

    assert_eq!(
        wrong_resp.status(),
        401,
        "wrong password:\n{}",
        wrong_resp.text()
    );
    assert_eq!(
        unknown_resp.status(),
        401,
        "unknown user:\n{}",
        unknown_resp.text()
    );
    // Not even the first challenge may tell that the user does not exist.
    assert_eq!(challenges(&first).len(), 2, "{}", first.text());
    assert_eq!(
        fingerprint(&wrong_resp),
        fingerprint(&unknown_resp),
        "the two 401s differ beyond the nonce:\n--- wrong password ---\n{}\n--- unknown user ---\n{}",
        wrong_resp.text(),
        unknown_resp.text()
    );
    for c in challenges(&wrong_resp) {
        assert!(
            !c.is_stale(),
            "a wrong password is not a stale nonce: {c:?}"
        );
    }
}

#[test]
fn expired_nonce_is_rechallenged_with_stale_true_and_the_new_nonce_works() {
    let mut env = TestEnv::new();
    // The shortest lifetime the config allows.
    env.set_env("SENTRALBORD_REGISTRAR__NONCE_LIFETIME_S", "10");
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let mut reg = Register::new("alice", REALM, &client);
    let password = User::alice().password;
    let first = client.request(&reg.to_bytes(&client));
    assert_eq!(first.status(), 401, "{}", first.text());
    let old = challenge_for(&first, Algorithm::Sha256).expect("a SHA-256 challenge");

    thread::sleep(Duration::from_secs(12));

    // A correct response computed on the expired nonce.
    reg.cseq += 1;
    let uri = reg.request_uri();
    let creds = Credentials {
        username: "alice",
        password: &password,
        method: "REGISTER",
        uri: &uri,
        nc: 1,
    };
    reg.authorization = Some(authorization(&old, &creds));
    let stale = client.request(&reg.to_bytes(&client));
    assert_eq!(
        stale.status(),
        401,
        "an expired nonce must not be accepted:\n{}",
        stale.text()
    );
    let fresh = challenge_for(&stale, Algorithm::Sha256).expect("a new SHA-256 challenge");
    assert!(
        fresh.is_stale(),
        "stale=TRUE expected (RFC 7616 s3.3):\n{}",
        stale.text()
    );
    assert_ne!(
        fresh.get("nonce"),
        old.get("nonce"),
        "the new challenge needs a new nonce"
    );

    reg.cseq += 1;
    reg.authorization = Some(authorization(&fresh, &creds));
    let ok = client.request(&reg.to_bytes(&client));
    assert_eq!(
        ok.status(),
        200,
        "the fresh nonce must work:\n{}",
        ok.text()
    );
}

#[test]
fn interval_below_min_expires_gets_423_after_authentication() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let mut reg = Register::new("alice", REALM, &client);
    reg.expires = Some(30);
    let (_, resp) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Sha256,
        &User::alice().password,
    );
    assert_eq!(resp.status(), 423, "{}", resp.text());
    assert_eq!(
        resp.header("Min-Expires").map(str::trim),
        Some("60"),
        "{}",
        resp.text()
    );
}

#[test]
fn wildcard_with_expires_zero_removes_every_binding() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let mut client = UdpClient::new(daemon.phones_udp());
    let password = User::alice().password;
    let local = client.local_addr();
    let mut reg = Register::new("alice", REALM, &client);
    // Two devices' worth of contacts in one REGISTER.
    reg.contact = Some(format!(
        "<sip:alice@{local};line=1>, <sip:alice@{local};line=2>"
    ));
    let (_, ok) = register_with_digest(&mut client, &mut reg, Algorithm::Sha256, &password);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(
        ok.contacts().len() >= 2,
        "both bindings expected:\n{}",
        ok.text()
    );

    reg.contact = Some("*".to_owned());
    reg.expires = Some(0);
    let (_, removed) = register_with_digest(&mut client, &mut reg, Algorithm::Sha256, &password);
    assert_eq!(removed.status(), 200, "{}", removed.text());
    assert!(
        removed.contacts().is_empty(),
        "no binding may remain:\n{}",
        removed.text()
    );

    reg.contact = None;
    reg.expires = None;
    let (_, query) = register_with_digest(&mut client, &mut reg, Algorithm::Sha256, &password);
    assert_eq!(query.status(), 200, "{}", query.text());
    assert!(
        query.contacts().is_empty(),
        "a query after removal lists nothing:\n{}",
        query.text()
    );
}

#[test]
fn sigterm_exits_with_status_zero() {
    let env = TestEnv::new();
    let daemon = started(&env);
    let status = daemon.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn bindings_survive_a_restart_on_the_same_database() {
    let env = TestEnv::new();
    let password = User::alice().password;
    let daemon = started(&env);
    let contact;
    {
        let mut client = UdpClient::new(daemon.phones_udp());
        let mut reg = Register::new("alice", REALM, &client);
        reg.expires = Some(3600);
        contact = uri_of(reg.contact.as_deref().unwrap_or_default());
        let (_, ok) = register_with_digest(&mut client, &mut reg, Algorithm::Sha256, &password);
        assert_eq!(ok.status(), 200, "{}", ok.text());
    }
    let status = daemon.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let daemon = env.start();
    let mut client = UdpClient::new(daemon.phones_udp());
    let mut query = Register::new("alice", REALM, &client);
    // RFC 3261 s10.2.3: a REGISTER without Contact returns the current bindings.
    query.contact = None;
    query.expires = None;
    let (_, resp) = register_with_digest(&mut client, &mut query, Algorithm::Sha256, &password);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let expires = binding_expires(&resp, &contact).unwrap_or_else(|| {
        panic!(
            "binding {contact} lost across the restart:\n{}",
            resp.text()
        )
    });
    assert!(
        (1..=3600).contains(&expires),
        "remaining expires {expires} outside 1..=3600"
    );
}

#[test]
fn cli_lists_provisioned_users_without_their_passwords() {
    let env = TestEnv::new();
    env.provision(&[User::alice(), User::bob()]);
    let list = env.cli(&["user", "list"], None);
    for u in [User::alice(), User::bob()] {
        assert!(
            list.contains(&u.username),
            "{} missing from `user list`:\n{list}",
            u.username
        );
        assert!(
            list.contains(&u.extension),
            "{} missing from `user list`:\n{list}",
            u.extension
        );
        assert!(
            !list.contains(&u.password),
            "`user list` prints a password:\n{list}"
        );
    }
}

#[test]
fn cli_rejects_a_user_for_a_tenant_that_does_not_exist() {
    let env = TestEnv::new();
    let mut u = User::alice();
    u.tenant = "no-such-tenant".to_owned();
    let out = env.cli_output(
        &[
            "user",
            "add",
            "--tenant",
            &u.tenant,
            "--name",
            &u.name,
            "--extension",
            &u.extension,
            "--username",
            &u.username,
            "--realm",
            &u.realm,
            "--password-stdin",
        ],
        Some(&u.password),
    );
    assert!(
        !out.status.success(),
        "adding a user to a missing tenant must fail"
    );
}
