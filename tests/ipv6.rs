//! The daemon on IPv6 only: a phones profile listening on [::1], OPTIONS and a SHA-256
//! digest REGISTER over UDP and TCP. Needs the loopback ::1 (every Linux CI host has it);
//! without it the test fails with a message saying so rather than passing silently.

mod common;

use common::sip::{
    options_request, register_with_digest, Algorithm, Register, SipClient, TcpClient, UdpClient,
};
use common::{TestEnv, User, REALM};

#[test]
fn registers_and_answers_over_ipv6_udp_and_tcp() {
    assert!(
        std::net::UdpSocket::bind("[::1]:0").is_ok(),
        "this test needs the IPv6 loopback address ::1 on the machine"
    );
    let env = TestEnv::new();
    env.write_profile(
        "phones.toml",
        &format!(
            "name = \"phones\"\nkind = \"phones\"\nrealm = \"{REALM}\"\ndomains = [\"{REALM}\"]\n\
             [[listen]]\naddress = \"[::1]:0\"\ntransports = [\"udp\", \"tcp\"]\n"
        ),
    );
    env.provision(&[User::alice()]);
    let daemon = env.start();
    let udp = daemon.addr("phones", "udp");
    let tcp = daemon.addr("phones", "tcp");
    assert!(udp.is_ipv6() && tcp.is_ipv6(), "listeners: {udp} {tcp}");

    let mut client = UdpClient::new(udp);
    let resp = client.request(&options_request(&client));
    assert_eq!(resp.status(), 200, "{}", resp.text());
    // Our Via says [::1]: the response's Via carries received/rport for the IPv6 source.
    let mut reg = Register::new("alice", REALM, &client);
    let (_, ok) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Sha256,
        &User::alice().password,
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(
        ok.text().contains("[::1]"),
        "the binding holds the IPv6 contact:\n{}",
        ok.text()
    );

    let mut client = TcpClient::connect(tcp);
    let mut reg = Register::new("alice", REALM, &client);
    let (_, ok) = register_with_digest(
        &mut client,
        &mut reg,
        Algorithm::Sha256,
        &User::alice().password,
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    daemon.terminate();
}
