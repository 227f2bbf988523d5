//! Tests of caller lookup: the pure helpers, then the service against a real HTTP server
//! of our own on the loopback interface and an in-memory store (and once the real one).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::settings::{base64, clean_text, is_e164, UrlTemplate};
use super::*;
use crate::config::{LookupSettings, Numbering};

const NOW: u64 = 1_700_000_000;
const TENANT: TenantId = TenantId(1);
const CALLER: &str = "+4721000000";

// ---- pure helpers ----

#[test]
fn base64_matches_rfc4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        // RFC 7617 s2 example.
        ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
    }
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn e164_check() {
    for ok in ["+4721000000", "+1", "+123456789012345"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "",
        "+",
        "4721000000",
        "+47 21000000",
        "+0472100",
        "+1234567890123456",
        "anonymous",
        "+47a",
        "++47",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}

#[test]
fn clean_text_strips_controls_collapses_and_cuts() {
    assert_eq!(
        clean_text("  Ola\r\nVia: evil\t Nordmann ", 100).as_deref(),
        Some("Ola Via: evil Nordmann")
    );
    assert_eq!(clean_text(" \r\n\t\u{0}", 100), None);
    assert_eq!(clean_text("", 100), None);
    assert_eq!(clean_text("abcdef", 4).as_deref(), Some("abcd"));
    assert_eq!(clean_text("ab cdef", 4).as_deref(), Some("ab c"));
    // Cut at characters, never inside one.
    assert_eq!(clean_text("ÆØÅæøå", 3).as_deref(), Some("ÆØÅ"));
    assert_eq!(clean_text("ab  ", 3).as_deref(), Some("ab"));
    assert_eq!(clean_text("abc d", 3).as_deref(), Some("abc"));
}

#[test]
fn url_template_expands_and_percent_encodes() {
    let t = UrlTemplate::parse("https://dir.example/v1/{number}?n={national}&key=secret")
        .expect("valid");
    assert!(t.is_https());
    assert_eq!(
        t.expand("+4721000000", "21000000"),
        "https://dir.example/v1/%2B4721000000?n=21000000&key=secret"
    );
    assert_eq!(t.redacted(), "https://dir.example/v1/{number}");
    assert_eq!(
        t.expand("a b/&", "x"),
        "https://dir.example/v1/a%20b%2F%26?n=x&key=secret"
    );

    let t = UrlTemplate::parse("HTTP://127.0.0.1:8080/{national}").expect("valid");
    assert!(!t.is_https());

    for bad in [
        "ftp://x/{number}",
        "https://x/",
        "https://x/{nummer}",
        "https://x/{number",
        "http:///{number}",
        "http://{number}/",
        "http://x y/{number}",
        "",
    ] {
        assert!(
            matches!(
                UrlTemplate::parse(bad),
                Err(LookupError::BadTemplate { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn national_form_follows_the_trunk_numbering() {
    let norway = resolved(&LookupSettings::default());
    assert_eq!(norway.national("+4721000000"), "21000000");
    assert_eq!(norway.national("+4687654321"), "004687654321");

    let uk = Numbering {
        country_code: "44".into(),
        national_prefix: "0".into(),
        international_prefix: "00".into(),
    };
    let uk = LookupSettingsResolved::new(&LookupSettings::default(), &uk).expect("valid");
    assert_eq!(uk.national("+442079460000"), "02079460000");
    assert_eq!(uk.national("+4721000000"), "004721000000");
}

#[test]
fn resolved_settings_refuse_what_cannot_work_and_hide_secrets() {
    let mut s = LookupSettings {
        url_template: Some("https://x/{number}?apikey=k3y".into()),
        username: Some("u".into()),
        password: Some("pw-secret".into()),
        ..LookupSettings::default()
    };
    let r = resolved(&s);
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("pw-secret") && !shown.contains("k3y"),
        "{shown}"
    );
    assert!(r.has_directory());
    assert_eq!(r.budget(), Duration::from_millis(300));

    s.bearer_token = Some("t".into());
    assert!(matches!(
        LookupSettingsResolved::new(&s, &Numbering::default()),
        Err(LookupError::BadCredentials)
    ));
    s.bearer_token = None;
    s.username = Some("a:b".into());
    assert!(matches!(
        LookupSettingsResolved::new(&s, &Numbering::default()),
        Err(LookupError::BadCredentials)
    ));
    s.username = None;
    s.password = None;
    s.bearer_token = Some("bad\ntoken".into());
    assert!(matches!(
        LookupSettingsResolved::new(&s, &Numbering::default()),
        Err(LookupError::BadCredentials)
    ));
    s.bearer_token = None;
    s.name_pointer = "name".into();
    assert!(matches!(
        LookupSettingsResolved::new(&s, &Numbering::default()),
        Err(LookupError::BadPointer)
    ));
    s.name_pointer = "/name".into();
    s.budget_ms = 0;
    assert!(matches!(
        LookupSettingsResolved::new(&s, &Numbering::default()),
        Err(LookupError::ZeroTimeout)
    ));
}

#[test]
fn service_builds_outside_a_runtime() {
    // The runtime may build it before entering tokio; only lookups need the runtime.
    for url in [
        "http://127.0.0.1:9/{number}",
        "https://dir.example/{number}",
    ] {
        let s = LookupSettings {
            url_template: Some(url.into()),
            ..LookupSettings::default()
        };
        let svc = LookupService::new(resolved(&s), FakeStore::default()).expect(url);
        assert!(svc.settings().has_directory());
    }
}

#[test]
fn from_config_takes_the_trunk_numbering() {
    let config = crate::config::Config::builtin().expect("built-in config");
    let r = LookupSettingsResolved::from_config(&config).expect("valid");
    assert!(!r.has_directory(), "no URL template by default");
    assert_eq!(r.national("+4721000000"), "21000000");
}

// ---- an in-memory store ----

#[derive(Default)]
struct FakeState {
    local: HashMap<(i64, String), LocalCaller>,
    /// number -> (answer, expires_at)
    cache: HashMap<String, (CachedAnswer, u64)>,
    local_calls: usize,
    cache_puts: usize,
    /// Every operation fails (a store that is down or whose queue is full).
    failing: bool,
}

#[derive(Clone, Default)]
struct FakeStore(Arc<Mutex<FakeState>>);

impl FakeStore {
    fn with_local(self, number: &str, name: &str, source: CallerSource) -> Self {
        self.state().local.insert(
            (TENANT.0, number.to_owned()),
            LocalCaller {
                name: name.to_owned(),
                source,
            },
        );
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().expect("fake store lock")
    }

    fn cached(&self, number: &str) -> Option<(CachedAnswer, u64)> {
        self.state().cache.get(number).cloned()
    }
}

impl CallerStore for FakeStore {
    fn lookup_local_name(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> impl Future<Output = Result<Option<LocalCaller>, StoreError>> + Send + 'static {
        let mut s = self.state();
        s.local_calls += 1;
        let r = if s.failing {
            Err(StoreError::QueueFull)
        } else {
            Ok(s.local.get(&(tenant.0, number.to_owned())).cloned())
        };
        std::future::ready(r)
    }

    fn cache_get(
        &self,
        number: &str,
        now_unix: u64,
    ) -> impl Future<Output = Result<Option<CachedAnswer>, StoreError>> + Send + 'static {
        let s = self.state();
        let r = if s.failing {
            Err(StoreError::QueueFull)
        } else {
            Ok(s.cache
                .get(number)
                .filter(|(_, expires)| *expires > now_unix)
                .map(|(a, _)| a.clone()))
        };
        std::future::ready(r)
    }

    fn cache_put(
        &self,
        number: &str,
        name: Option<&str>,
        address: Option<&str>,
        found: bool,
        now_unix: u64,
        ttl_s: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let mut s = self.state();
        s.cache_puts += 1;
        let r = if s.failing {
            Err(StoreError::QueueFull)
        } else {
            let answer = CachedAnswer {
                name: name.filter(|_| found).map(str::to_owned),
                address: address.filter(|_| found).map(str::to_owned),
                found,
            };
            s.cache
                .insert(number.to_owned(), (answer, now_unix.saturating_add(ttl_s)));
            Ok(())
        };
        std::future::ready(r)
    }
}

// ---- a directory service of our own on 127.0.0.1 ----

/// What the test server does with a request.
#[derive(Clone)]
enum Behavior {
    /// Answer at once.
    Answer(u16, &'static str),
    /// Answer after a delay.
    Slow(Duration, u16, &'static str),
    /// Read the request, then never answer (keeping the connection open).
    Hang,
}

struct Directory {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    /// The request heads received, in order.
    heads: Arc<Mutex<Vec<String>>>,
}

impl Directory {
    /// Starts a server answering every request with `behavior`.
    async fn start(behavior: Behavior) -> Directory {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (r, h) = (Arc::clone(&requests), Arc::clone(&heads));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (behavior, r, h) = (behavior.clone(), Arc::clone(&r), Arc::clone(&h));
                tokio::spawn(serve_one(stream, behavior, r, h));
            }
        });
        Directory {
            addr,
            requests,
            heads,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn head(&self, i: usize) -> String {
        self.heads.lock().expect("heads")[i].clone()
    }
}

async fn serve_one(
    mut stream: TcpStream,
    behavior: Behavior,
    requests: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return;
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    heads
        .lock()
        .expect("heads")
        .push(String::from_utf8_lossy(&buf).into_owned());
    let (status, body) = match behavior {
        Behavior::Answer(status, body) => (status, body),
        Behavior::Slow(delay, status, body) => {
            tokio::time::sleep(delay).await;
            (status, body)
        }
        Behavior::Hang => {
            std::future::pending::<()>().await;
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

const OLA: &str = r#"{"name": "Ola Nordmann", "address": "Storgata 1, 0155 Oslo"}"#;

fn resolved(s: &LookupSettings) -> LookupSettingsResolved {
    LookupSettingsResolved::new(s, &Numbering::default()).expect("valid settings")
}

/// Settings for `url`, with a budget generous enough that a loaded test machine does
/// not turn a normal answer into a timeout.
fn settings_for(url: &str) -> LookupSettings {
    LookupSettings {
        url_template: Some(url.to_owned()),
        budget_ms: 5000,
        request_timeout_ms: 5000,
        ..LookupSettings::default()
    }
}

fn service(s: &LookupSettings, store: &FakeStore) -> LookupService<FakeStore> {
    LookupService::new(resolved(s), store.clone()).expect("service")
}

/// Waits (bounded) until `cond` holds: for effects of the background fetch task.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn found(name: &str, address: Option<&str>, source: CallerSource) -> Option<CallerInfo> {
    Some(CallerInfo {
        name: name.to_owned(),
        address: address.map(str::to_owned),
        source,
    })
}

// ---- the service over real HTTP ----

#[tokio::test]
async fn directory_answer_is_returned_cached_and_reused() {
    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/lookup/{number}?nat={national}"));
    s.username = Some("sb".into());
    s.password = Some("open sesame".into());
    let svc = service(&s, &store);

    let first = svc.lookup(TENANT, CALLER, NOW).await;
    assert_eq!(
        first,
        found(
            "Ola Nordmann",
            Some("Storgata 1, 0155 Oslo"),
            CallerSource::Directory
        )
    );
    let head = dir.head(0);
    assert!(
        head.starts_with("GET /lookup/%2B4721000000?nat=21000000 HTTP/1.1\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "authorization: basic {}\r\n",
            base64(b"sb:open sesame").to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(lower.contains("accept: application/json\r\n"), "{head}");

    // The cache write happens after the answer went out: wait for it.
    eventually("the positive cache entry", || {
        store.cached(CALLER).is_some()
    })
    .await;
    let (entry, expires) = store.cached(CALLER).expect("cached");
    assert!(entry.found);
    assert_eq!(entry.name.as_deref(), Some("Ola Nordmann"));
    assert_eq!(expires, NOW + 7 * 86_400);

    let second = svc.lookup(TENANT, CALLER, NOW + 60).await;
    assert_eq!(
        second,
        found(
            "Ola Nordmann",
            Some("Storgata 1, 0155 Oslo"),
            CallerSource::Cache
        )
    );
    assert_eq!(
        dir.requests(),
        1,
        "the cache hit must not reach the service"
    );

    // Once the entry expires (time is an input) the service is asked again.
    let third = svc.lookup(TENANT, CALLER, NOW + 7 * 86_400 + 1).await;
    assert_eq!(third.map(|i| i.source), Some(CallerSource::Directory));
    assert_eq!(dir.requests(), 2);
}

#[tokio::test]
async fn bearer_token_and_custom_pointers() {
    let body = r#"{"result": {"person": {"full": "Kari\r\nX-Evil: 1"}, "addr": 7}}"#;
    let dir = Directory::start(Behavior::Answer(200, body)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/q?n={national}"));
    s.bearer_token = Some("tok-123".into());
    s.name_pointer = "/result/person/full".into();
    s.address_pointer = "/result/addr".into();
    let svc = service(&s, &store);

    let got = svc.lookup(TENANT, CALLER, NOW).await;
    // Control characters never reach the display name; a non-string address is ignored.
    assert_eq!(got, found("Kari X-Evil: 1", None, CallerSource::Directory));
    let head = dir.head(0).to_ascii_lowercase();
    assert!(head.starts_with("get /q?n=21000000 http/1.1"), "{head}");
    assert!(head.contains("authorization: bearer tok-123\r\n"), "{head}");
}

#[tokio::test]
async fn not_found_is_cached_negatively() {
    let dir = Directory::start(Behavior::Answer(404, "")).await;
    let store = FakeStore::default();
    let svc = service(&settings_for(&dir.url("/{number}")), &store);

    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    eventually("the negative cache entry", || {
        store.cached(CALLER).is_some()
    })
    .await;
    let (entry, expires) = store.cached(CALLER).expect("cached");
    assert!(!entry.found);
    assert_eq!(expires, NOW + 86_400, "negative entries use their own ttl");

    assert_eq!(svc.lookup(TENANT, CALLER, NOW + 10).await, None);
    assert_eq!(
        dir.requests(),
        1,
        "a negative entry answers without the service"
    );
    assert_eq!(svc.lookup(TENANT, CALLER, NOW + 86_401).await, None);
    assert_eq!(dir.requests(), 2, "an expired negative entry asks again");
}

#[tokio::test]
async fn answer_without_a_name_is_cached_negatively() {
    for body in [
        r#"{"address": "somewhere"}"#,
        r#"{"name": 42}"#,
        r#"{"name": "  \r\n "}"#,
        r#"[]"#,
    ] {
        let dir = Directory::start(Behavior::Answer(200, body)).await;
        let store = FakeStore::default();
        let svc = service(&settings_for(&dir.url("/{number}")), &store);
        assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None, "{body}");
        eventually("the negative cache entry", || {
            store.cached(CALLER).is_some()
        })
        .await;
        assert!(!store.cached(CALLER).expect("cached").0.found, "{body}");
    }
}

/// A failing service gives `None`, caches nothing, and is asked again next time.
async fn assert_failure_not_cached(dir: &Directory, s: &LookupSettings) {
    let store = FakeStore::default();
    let svc = service(s, &store);
    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    assert_eq!(svc.lookup(TENANT, CALLER, NOW + 1).await, None);
    // Give a (wrongly) delayed cache write the chance to show up.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.cached(CALLER).is_none(), "errors must not be cached");
    assert_eq!(store.state().cache_puts, 0);
    assert_eq!(dir.requests(), 2, "each lookup asks the service again");
}

#[tokio::test]
async fn server_error_is_not_cached() {
    let dir = Directory::start(Behavior::Answer(500, "{}")).await;
    assert_failure_not_cached(&dir, &settings_for(&dir.url("/{number}"))).await;
}

#[tokio::test]
async fn malformed_json_is_not_cached() {
    let dir = Directory::start(Behavior::Answer(200, "{\"name\": \"Ola")).await;
    assert_failure_not_cached(&dir, &settings_for(&dir.url("/{number}"))).await;
}

#[tokio::test]
async fn redirect_is_a_failure() {
    let dir = Directory::start(Behavior::Answer(302, "")).await;
    assert_failure_not_cached(&dir, &settings_for(&dir.url("/{number}"))).await;
}

#[tokio::test]
async fn oversized_answer_is_not_cached() {
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024)).leak();
    let dir = Directory::start(Behavior::Answer(200, huge)).await;
    assert_failure_not_cached(&dir, &settings_for(&dir.url("/{number}"))).await;
}

#[tokio::test]
async fn request_timeout_is_not_cached() {
    let dir = Directory::start(Behavior::Slow(Duration::from_secs(30), 200, OLA)).await;
    let mut s = settings_for(&dir.url("/{number}"));
    s.request_timeout_ms = 50;
    assert_failure_not_cached(&dir, &s).await;
}

#[tokio::test]
async fn slow_service_gives_none_within_the_budget() {
    let dir = Directory::start(Behavior::Slow(Duration::from_secs(30), 200, OLA)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/{number}"));
    s.budget_ms = 100;
    s.request_timeout_ms = 60_000;
    let svc = service(&s, &store);
    // It returned (the test would hang otherwise) and found nothing.
    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    assert_eq!(dir.requests(), 1);
}

#[tokio::test]
async fn late_answer_still_lands_in_the_cache() {
    let dir = Directory::start(Behavior::Slow(Duration::from_millis(300), 200, OLA)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/{number}"));
    s.budget_ms = 20;
    let svc = service(&s, &store);

    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    eventually("the late answer in the cache", || {
        store.cached(CALLER).is_some()
    })
    .await;
    let again = svc.lookup(TENANT, CALLER, NOW + 5).await;
    assert_eq!(again.map(|i| i.source), Some(CallerSource::Cache));
    assert_eq!(dir.requests(), 1);
}

#[tokio::test]
async fn service_that_never_answers_gives_none() {
    let dir = Directory::start(Behavior::Hang).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/{number}"));
    s.budget_ms = 100;
    let svc = service(&s, &store);
    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    eventually("the request to arrive", || dir.requests() == 1).await;
}

#[tokio::test]
async fn connection_refused_gives_none() {
    // A port that was just free: nothing listens there any more.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let store = FakeStore::default();
    let svc = service(
        &settings_for(&format!("http://127.0.0.1:{port}/{{number}}")),
        &store,
    );
    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.cached(CALLER).is_none());
}

#[tokio::test]
async fn https_client_builds_and_a_failed_handshake_gives_none() {
    // The server answers the ClientHello with plain HTTP, so the handshake fails at
    // once: no name, nothing cached.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let store = FakeStore::default();
    let url = format!("https://127.0.0.1:{port}/{{number}}");
    let svc = service(&settings_for(&url), &store);
    assert_eq!(svc.lookup(TENANT, CALLER, NOW).await, None);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the client did connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.cached(CALLER).is_none());
}

#[test]
fn error_chain_shows_causes_once() {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    let e = LookupError::TlsRoots(io);
    assert_eq!(
        ErrorChain(&e).to_string(),
        "no trusted root certificates for https lookups: refused"
    );
    let e = LookupError::Body("length limit exceeded".into());
    assert_eq!(
        ErrorChain(&e).to_string(),
        "directory answer unreadable: length limit exceeded"
    );
}

#[tokio::test]
async fn concurrent_lookups_of_one_number_share_one_request() {
    let dir = Directory::start(Behavior::Slow(Duration::from_millis(200), 200, OLA)).await;
    let store = FakeStore::default();
    let svc = service(&settings_for(&dir.url("/{number}")), &store);

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.lookup(TENANT, CALLER, NOW).await })
        })
        .collect();
    for task in tasks {
        let got = task.await.expect("lookup task");
        assert_eq!(got.map(|i| i.name), Some("Ola Nordmann".to_owned()));
    }
    assert_eq!(dir.requests(), 1, "ten lookups, one request");
    eventually("the cache write", || store.state().cache_puts == 1).await;
}

#[tokio::test]
async fn requests_beyond_max_concurrent_skip_the_service() {
    let dir = Directory::start(Behavior::Slow(Duration::from_millis(500), 200, OLA)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/{number}"));
    s.max_concurrent = 1;
    let svc = service(&s, &store);

    let first = tokio::spawn({
        let svc = svc.clone();
        async move { svc.lookup(TENANT, CALLER, NOW).await }
    });
    eventually("the first request", || dir.requests() == 1).await;
    // Another number while the only slot is taken: skipped, not queued.
    assert_eq!(svc.lookup(TENANT, "+4722000000", NOW).await, None);
    assert_eq!(
        first.await.expect("task").map(|i| i.source),
        Some(CallerSource::Directory)
    );
    assert_eq!(dir.requests(), 1);
    // The slot is free again once the first request finished.
    eventually("the slot to be released", || store.state().cache_puts == 1).await;
    let later = svc.lookup(TENANT, "+4722000000", NOW).await;
    assert_eq!(later.map(|i| i.source), Some(CallerSource::Directory));
    assert_eq!(dir.requests(), 2);
}

#[tokio::test]
async fn local_names_win_over_the_directory() {
    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let store = FakeStore::default()
        .with_local(CALLER, "Per Ansatt", CallerSource::User)
        .with_local("+4722000000", "Kunde AS", CallerSource::Contact);
    let svc = service(&settings_for(&dir.url("/{number}")), &store);

    assert_eq!(
        svc.lookup(TENANT, CALLER, NOW).await,
        found("Per Ansatt", None, CallerSource::User)
    );
    assert_eq!(
        svc.lookup(TENANT, "+4722000000", NOW).await,
        found("Kunde AS", None, CallerSource::Contact)
    );
    assert_eq!(dir.requests(), 0);
    // Another tenant does not see this tenant's names.
    let other = svc.lookup(TenantId(2), CALLER, NOW).await;
    assert_eq!(other.map(|i| i.source), Some(CallerSource::Directory));
    assert_eq!(dir.requests(), 1);
}

#[tokio::test]
async fn failing_store_still_asks_the_directory() {
    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let store = FakeStore::default();
    store.state().failing = true;
    let svc = service(&settings_for(&dir.url("/{number}")), &store);
    let got = svc.lookup(TENANT, CALLER, NOW).await;
    assert_eq!(got.map(|i| i.source), Some(CallerSource::Directory));
    eventually("the attempted cache write", || {
        store.state().cache_puts == 1
    })
    .await;
}

#[tokio::test]
async fn zero_ttl_caches_nothing() {
    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let store = FakeStore::default();
    let mut s = settings_for(&dir.url("/{number}"));
    s.cache_ttl_s = 0;
    let svc = service(&s, &store);
    assert!(svc.lookup(TENANT, CALLER, NOW).await.is_some());
    assert!(svc.lookup(TENANT, CALLER, NOW).await.is_some());
    assert_eq!(dir.requests(), 2);
    assert_eq!(store.state().cache_puts, 0);
}

#[tokio::test]
async fn without_url_template_only_local_and_cache_are_used() {
    let store = FakeStore::default().with_local(CALLER, "Per Ansatt", CallerSource::User);
    let svc = service(&LookupSettings::default(), &store);
    assert_eq!(
        svc.lookup(TENANT, CALLER, NOW).await.map(|i| i.name),
        Some("Per Ansatt".to_owned())
    );
    assert_eq!(svc.lookup(TENANT, "+4722000000", NOW).await, None);
}

#[tokio::test]
async fn non_e164_numbers_are_not_looked_up() {
    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let store = FakeStore::default();
    let svc = service(&settings_for(&dir.url("/{number}")), &store);
    for number in ["anonymous", "", "21000000", "+47\r\n"] {
        assert_eq!(svc.lookup(TENANT, number, NOW).await, None, "{number:?}");
    }
    assert_eq!(store.state().local_calls, 0);
    assert_eq!(dir.requests(), 0);
}

#[tokio::test]
async fn caller_info_debug_redacts_personal_data() {
    let info = CallerInfo {
        name: "Ola Nordmann".into(),
        address: Some("Storgata 1".into()),
        source: CallerSource::Directory,
    };
    let shown = format!("{info:?}");
    assert!(
        !shown.contains("Nordmann") && !shown.contains("Storgata"),
        "{shown}"
    );
}

// ---- with the real store ----

#[tokio::test]
async fn real_store_local_names_and_cache() {
    use crate::store::{NewContact, NewUser, Password, Store};

    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("lookup.db")).expect("open store");
    let handle = store.handle();
    let tenant = handle.add_tenant("acme").await.expect("tenant");
    handle
        .add_user(NewUser {
            tenant,
            name: "Per Ansatt".into(),
            extension: "100".into(),
            mobile: Some("+4791000000".into()),
            sip_username: "per".into(),
            realm: "sentralbord".into(),
            password: Password::new("correct horse battery"),
        })
        .await
        .expect("user");
    handle
        .add_contact(NewContact {
            tenant,
            number: "+4722000000".into(),
            first_name: Some("Kari".into()),
            last_name: Some("Kunde".into()),
            company: None,
            department: None,
            note: None,
        })
        .await
        .expect("contact");

    let dir = Directory::start(Behavior::Answer(200, OLA)).await;
    let svc = LookupService::new(
        resolved(&settings_for(&dir.url("/{number}"))),
        handle.clone(),
    )
    .expect("service");

    let user = svc.lookup(tenant, "+4791000000", NOW).await;
    assert_eq!(user, found("Per Ansatt", None, CallerSource::User));
    let contact = svc.lookup(tenant, "+4722000000", NOW).await;
    assert_eq!(contact.map(|i| i.source), Some(CallerSource::Contact));
    assert_eq!(dir.requests(), 0);

    let first = svc.lookup(tenant, CALLER, NOW).await;
    assert_eq!(first.map(|i| i.source), Some(CallerSource::Directory));
    let mut cached = None;
    for _ in 0..500 {
        cached = svc.lookup(tenant, CALLER, NOW + 1).await;
        if cached
            .as_ref()
            .is_some_and(|i| i.source == CallerSource::Cache)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cached,
        found(
            "Ola Nordmann",
            Some("Storgata 1, 0155 Oslo"),
            CallerSource::Cache
        )
    );
    assert_eq!(dir.requests(), 1);
    drop(svc);
    drop(handle);
    store.close().expect("close");
}
