//! Caller-ID enrichment: finds a name for the calling number of an inbound call.
//!
//! Input: `(tenant, E.164 number, now_unix)` from the runtime, when the engine asks for
//! a caller's name. Output: `Option<CallerInfo>`, always within the time budget; a
//! failing, slow or unconfigured directory service gives `None` and the call rings with
//! the bare number. Nothing here ever fails the call.
//!
//! Order of the steps:
//! 1. the tenant's own data: its users' mobiles, then its directory of contacts;
//! 2. the lookup cache in the store (a negative entry means "the service had nothing":
//!    `None` without asking it again);
//! 3. the external directory service: `GET` of `lookup.url_template` with `{number}` /
//!    `{national}` filled in, basic or bearer credentials, JSON answer read through
//!    `lookup.name_pointer` / `lookup.address_pointer`. A 200 with a name is cached for
//!    `lookup.cache_ttl_s`; a 404 or a 200 without a name for `lookup.negative_cache_ttl_s`;
//!    errors and timeouts are not cached.
//!
//! Timers: the whole lookup is bounded by `lookup.budget_ms`; each HTTP request by
//! `lookup.request_timeout_ms`. The HTTP request runs in a task of its own, so one that
//! outlives the caller's budget still caches its answer for the next call from that
//! number.
//!
//! Protecting the service: concurrent lookups of one number share one HTTP request
//! (coalescing), and at most `lookup.max_concurrent` requests are in flight; a lookup
//! that finds no free slot skips the service (load shedding, never queueing, so a burst
//! cannot pile up requests behind a slow service).
//!
//! Secrets: credentials are sent as a sensitive header and never logged; the URL is
//! logged as its template without the query string; numbers and names go through
//! [`crate::util::redact::Pii`].

mod http;
mod settings;
mod store;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::store::{StoreError, StoreHandle, TenantId};
use crate::util::redact::Pii;

pub use settings::LookupSettingsResolved;
pub use store::{CachedAnswer, CallerStore, LocalCaller};

use http::{DirectoryAnswer, HttpDirectory};
use settings::is_e164;

/// Everything that can go wrong in caller lookup. Only [`LookupService::new`] returns
/// these; failures during a lookup are logged and give `None`.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The URL template cannot be used.
    #[error("lookup.url_template {reason}")]
    BadTemplate {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The credentials cannot be sent (both basic and bearer set, a colon in the user
    /// name, or characters not allowed in a header).
    #[error("lookup credentials cannot be used in an Authorization header")]
    BadCredentials,
    /// A JSON pointer that does not start with `/`.
    #[error("lookup JSON pointers must be empty or start with \"/\"")]
    BadPointer,
    /// A zero budget or request timeout.
    #[error("lookup.budget_ms and lookup.request_timeout_ms must be positive")]
    ZeroTimeout,
    /// The TLS configuration could not be built.
    #[error("TLS set-up for the directory service failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The system's trusted root certificates could not be loaded.
    #[error("no trusted root certificates for https lookups: {0}")]
    TlsRoots(#[source] std::io::Error),
    /// The request could not be sent or the response not received.
    #[error("directory request failed")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// The service answered with a status other than 200 or 404.
    #[error("directory service answered {0}")]
    Status(u16),
    /// The answer's body could not be read or was too large.
    #[error("directory answer unreadable")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The answer is not JSON.
    #[error("directory answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The request took longer than `lookup.request_timeout_ms`.
    #[error("directory request timed out")]
    Timeout,
    /// The store failed to read or write the cache.
    #[error("lookup store: {0}")]
    Store(#[from] StoreError),
}

/// Where a caller's name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerSource {
    /// A user of the tenant (the number is the user's mobile).
    User,
    /// The tenant's directory of contacts.
    Contact,
    /// An earlier answer of the directory service, from the cache.
    Cache,
    /// The directory service, just now.
    Directory,
}

/// The caller's identity found for a number. The name is free of control characters
/// and at most 100 characters long, but may hold `"` or `\`: quote it for SIP.
#[derive(Clone, PartialEq, Eq)]
pub struct CallerInfo {
    /// The caller's name, for the display name and the call log.
    pub name: String,
    /// The caller's address, when the directory service gave one.
    pub address: Option<String>,
    /// Where it was found.
    pub source: CallerSource,
}

impl fmt::Debug for CallerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and addresses are personal data: redacted unless SENTRALBORD_LOG_PII is set.
        f.debug_struct("CallerInfo")
            .field("name", &Pii(&self.name))
            .field("address", &self.address.as_ref().map(Pii))
            .field("source", &self.source)
            .finish()
    }
}

/// The outcome of one HTTP fetch, shared with every lookup waiting for it: `None` while
/// the request runs, then `Some(answer)`.
type Shared = Option<Option<CallerInfo>>;

/// The caller-ID lookup service: cheap to clone (all clones share the HTTP client, the
/// in-flight table and the concurrency limit).
pub struct LookupService<S: CallerStore = StoreHandle> {
    inner: Arc<Inner<S>>,
}

impl<S: CallerStore> Clone for LookupService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: CallerStore> fmt::Debug for LookupService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupService")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    settings: LookupSettingsResolved,
    store: S,
    /// `None` when no URL template is configured.
    http: Option<HttpDirectory>,
    /// One permit per HTTP request in flight.
    permits: Arc<Semaphore>,
    /// Numbers with an HTTP request in flight, and where its answer will appear.
    inflight: Mutex<HashMap<String, watch::Receiver<Shared>>>,
    /// False after a failure until the next success, so a broken service is reported
    /// once at warn level rather than on every call.
    healthy: AtomicBool,
}

impl<S: CallerStore> LookupService<S> {
    /// Builds the service (and its HTTP client, when a URL template is configured).
    /// Fails only on settings that cannot work, such as https without any trusted root.
    pub fn new(settings: LookupSettingsResolved, store: S) -> Result<Self, LookupError> {
        let http = HttpDirectory::new(&settings)?;
        if let Some(http) = &http {
            info!(
                url = http.redacted_url(),
                "caller lookup directory configured"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(settings.max_concurrent)),
                settings,
                store,
                http,
                inflight: Mutex::new(HashMap::new()),
                healthy: AtomicBool::new(true),
            }),
        })
    }

    /// The settings the service runs with.
    pub fn settings(&self) -> &LookupSettingsResolved {
        &self.inner.settings
    }

    /// Finds a name for `number` (E.164) calling into `tenant`. Never errors to the
    /// caller: a failing or slow service yields `None` within the budget. `now_unix`
    /// (the runtime's wall clock) decides cache expiry.
    pub async fn lookup(
        &self,
        tenant: TenantId,
        number: &str,
        now_unix: u64,
    ) -> Option<CallerInfo> {
        if !is_e164(number) {
            // Anonymous or malformed caller IDs: nothing to look up, nothing to send out.
            debug!(number = %Pii(number), "caller lookup skipped: not an E.164 number");
            return None;
        }
        let budget = self.inner.settings.budget;
        match tokio::time::timeout(budget, self.resolve(tenant, number, now_unix)).await {
            Ok(found) => found,
            Err(_) => {
                debug!(number = %Pii(number), ?budget, "caller lookup gave up: budget spent");
                None
            }
        }
    }

    /// The three steps, unbounded in time (the caller bounds them).
    async fn resolve(&self, tenant: TenantId, number: &str, now_unix: u64) -> Option<CallerInfo> {
        let inner = &self.inner;
        match inner.store.lookup_local_name(tenant, number).await {
            Ok(Some(local)) => {
                return Some(CallerInfo {
                    name: local.name,
                    address: None,
                    source: local.source,
                })
            }
            Ok(None) => {}
            // The store being busy must not cost the caller its name: go on to the service.
            Err(e) => debug!(error = %e, "caller lookup: local names unavailable"),
        }
        match inner.store.cache_get(number, now_unix).await {
            Ok(Some(cached)) if cached.found => {
                return cached.name.map(|name| CallerInfo {
                    name,
                    address: cached.address,
                    source: CallerSource::Cache,
                })
            }
            // A negative entry: the service had nothing; do not ask it again yet.
            Ok(Some(_)) => return None,
            Ok(None) => {}
            Err(e) => debug!(error = %e, "caller lookup: cache unavailable"),
        }
        inner.http.as_ref()?;
        let mut answer = self.join_or_start(number, now_unix)?;
        // Err: the fetch task ended without answering (it cannot, short of a panic).
        let shared = answer.wait_for(Option::is_some).await.ok()?;
        shared.clone().flatten()
    }

    /// Joins the HTTP request in flight for `number`, or starts one. `None` when no
    /// request slot is free (load shedding).
    fn join_or_start(&self, number: &str, now_unix: u64) -> Option<watch::Receiver<Shared>> {
        let mut inflight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = inflight.get(number) {
            return Some(rx.clone());
        }
        let Ok(permit) = Arc::clone(&self.inner.permits).try_acquire_owned() else {
            debug!(number = %Pii(number), "caller lookup: directory busy, skipped");
            return None;
        };
        let (tx, rx) = watch::channel(None);
        inflight.insert(number.to_owned(), rx.clone());
        drop(inflight);
        let inner = Arc::clone(&self.inner);
        let number = number.to_owned();
        tokio::spawn(async move { inner.fetch(number, now_unix, permit, tx).await });
        Some(rx)
    }
}

impl<S: CallerStore> Inner<S> {
    /// One HTTP request: asks the service, tells the waiters, caches the answer, then
    /// leaves the in-flight table.
    async fn fetch(
        self: Arc<Self>,
        number: String,
        now_unix: u64,
        _permit: OwnedSemaphorePermit,
        tx: watch::Sender<Shared>,
    ) {
        // Leaves the table even if this task is cancelled (runtime shutdown), so a later
        // lookup of the number is never stuck waiting for an answer that cannot come.
        let _entry = InflightEntry {
            inner: &self,
            number: &number,
        };
        let Some(http) = &self.http else {
            return;
        };
        let national = self.settings.national(&number);
        let outcome = tokio::time::timeout(
            self.settings.request_timeout,
            http.fetch(&number, &national),
        )
        .await
        .unwrap_or(Err(LookupError::Timeout));

        let (info, cache) = match outcome {
            Ok(DirectoryAnswer::Found { name, address }) => {
                self.note_success();
                debug!(number = %Pii(&number), "caller lookup: directory found a name");
                let info = CallerInfo {
                    name,
                    address,
                    source: CallerSource::Directory,
                };
                (Some(info), Some((true, self.settings.cache_ttl_s)))
            }
            Ok(DirectoryAnswer::NotFound) => {
                self.note_success();
                debug!(number = %Pii(&number), "caller lookup: directory has no name");
                (None, Some((false, self.settings.negative_cache_ttl_s)))
            }
            Err(e) => {
                self.note_failure(http.redacted_url(), &e);
                (None, None)
            }
        };
        // Waiters first: the cache write must not add to a ringing call's delay. The
        // entry stays in the in-flight table until the cache holds the answer, so a
        // lookup in between joins this answer instead of sending a second request.
        tx.send_replace(Some(info.clone()));
        if let Some((found, ttl_s)) = cache {
            if ttl_s > 0 {
                let name = info.as_ref().map(|i| i.name.as_str());
                let address = info.as_ref().and_then(|i| i.address.as_deref());
                if let Err(e) = self
                    .store
                    .cache_put(&number, name, address, found, now_unix, ttl_s)
                    .await
                {
                    debug!(error = %e, "caller lookup: answer not cached");
                }
            }
        }
    }

    /// Records a working answer; logs a recovery after failures.
    fn note_success(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            info!("caller lookup directory answers again");
        }
    }

    /// Records a failure: warn on the first after a success, debug while it persists.
    fn note_failure(&self, url: &str, error: &LookupError) {
        let error = ErrorChain(error);
        if self.healthy.swap(false, Ordering::Relaxed) {
            warn!(url, %error, "caller lookup directory failing; calls ring with bare numbers");
        } else {
            debug!(url, %error, "caller lookup directory still failing");
        }
    }
}

/// An error with its causes, `a: b: c`, so a log line says why a connection failed.
/// Causes whose text the outer message already shows are skipped.
struct ErrorChain<'a>(&'a LookupError);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(e) = cause {
            let text = e.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            cause = e.source();
        }
        Ok(())
    }
}

/// Removes a number from the in-flight table when its fetch task ends.
struct InflightEntry<'a, S> {
    inner: &'a Inner<S>,
    number: &'a str,
}

impl<S> Drop for InflightEntry<'_, S> {
    fn drop(&mut self) {
        self.inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.number);
    }
}
