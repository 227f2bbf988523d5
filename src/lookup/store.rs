//! What the lookup needs from the store, as a trait so tests can use an in-memory fake.

use std::future::Future;

use crate::store::{CachedLookup, LocalName, Source, StoreError, StoreHandle, TenantId};

use super::CallerSource;

/// A caller name found in the tenant's own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaller {
    /// The name to display.
    pub name: String,
    /// [`CallerSource::User`] or [`CallerSource::Contact`].
    pub source: CallerSource,
}

/// A cached answer of the directory service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// The name the service gave; `None` for a negative entry.
    pub name: Option<String>,
    /// The address the service gave.
    pub address: Option<String>,
    /// False for a negative entry: the service had nothing for the number.
    pub found: bool,
}

/// The three store operations a lookup uses, with the shapes of [`StoreHandle`]'s
/// methods of the same names. The futures are `'static` so the HTTP fetch task, which
/// may outlive the lookup that started it, can write the cache.
pub trait CallerStore: Send + Sync + 'static {
    /// The tenant's user (by mobile) or contact with this number.
    fn lookup_local_name(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> impl Future<Output = Result<Option<LocalCaller>, StoreError>> + Send + 'static;

    /// The cached answer for `number`, unless it expired at or before `now_unix`.
    fn cache_get(
        &self,
        number: &str,
        now_unix: u64,
    ) -> impl Future<Output = Result<Option<CachedAnswer>, StoreError>> + Send + 'static;

    /// Stores the service's answer for `number`, valid for `ttl_s` seconds from `now_unix`.
    fn cache_put(
        &self,
        number: &str,
        name: Option<&str>,
        address: Option<&str>,
        found: bool,
        now_unix: u64,
        ttl_s: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static;
}

impl CallerStore for StoreHandle {
    fn lookup_local_name(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> impl Future<Output = Result<Option<LocalCaller>, StoreError>> + Send + 'static {
        let reply = StoreHandle::lookup_local_name(self, tenant, number);
        async move { Ok(reply.await?.map(LocalCaller::from)) }
    }

    fn cache_get(
        &self,
        number: &str,
        now_unix: u64,
    ) -> impl Future<Output = Result<Option<CachedAnswer>, StoreError>> + Send + 'static {
        let reply = StoreHandle::cache_get(self, number, unix_i64(now_unix));
        async move { Ok(reply.await?.map(CachedAnswer::from)) }
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
        StoreHandle::cache_put(
            self,
            number,
            name,
            address,
            found,
            unix_i64(now_unix),
            ttl_s,
        )
    }
}

/// Seconds since the epoch as the store keeps them (saturating: a clock that far ahead
/// only means entries never expire).
fn unix_i64(now_unix: u64) -> i64 {
    i64::try_from(now_unix).unwrap_or(i64::MAX)
}

impl From<LocalName> for LocalCaller {
    fn from(local: LocalName) -> Self {
        Self {
            name: local.name,
            source: match local.source {
                Source::User => CallerSource::User,
                Source::Contact => CallerSource::Contact,
            },
        }
    }
}

impl From<CachedLookup> for CachedAnswer {
    fn from(c: CachedLookup) -> Self {
        Self {
            name: c.name,
            address: c.address,
            found: c.found,
        }
    }
}
