//! The HTTP client for the external directory service: one GET per number, a JSON
//! answer read through two JSON pointers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::settings::{
    clean_text, LookupSettingsResolved, UrlTemplate, MAX_ADDRESS_CHARS, MAX_NAME_CHARS,
};
use super::LookupError;

/// Largest answer body read; a directory answer is a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long an idle keep-alive connection to the service is kept for the next lookup.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// What the directory service said about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirectoryAnswer {
    /// A name (and maybe an address), already cleaned for display.
    Found {
        /// The caller's name.
        name: String,
        /// The caller's address.
        address: Option<String>,
    },
    /// 404, or 200 without a usable name: the service has nothing for this number.
    NotFound,
}

/// A configured directory service.
pub(crate) struct HttpDirectory {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    template: UrlTemplate,
    auth: Option<HeaderValue>,
    name_pointer: String,
    address_pointer: String,
}

impl HttpDirectory {
    /// Builds the client. `None` when no URL template is configured.
    pub(crate) fn new(settings: &LookupSettingsResolved) -> Result<Option<Self>, LookupError> {
        let Some(template) = settings.template.clone() else {
            return Ok(None);
        };
        let mut http = HttpConnector::new();
        // The TLS layer above handles https; this connector must accept both schemes.
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.request_timeout));

        // ring is named explicitly so the client never depends on which rustls crypto
        // provider some other part of the process installed as the default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(LookupError::Tls)?;
        let tls = if template.is_https() {
            // The operating system's roots, so a private CA installed by the operator works.
            builder
                .with_native_roots()
                .map_err(LookupError::TlsRoots)?
                .with_no_client_auth()
        } else {
            // A plain-http service needs no roots; not reading them keeps a host without a
            // CA bundle working.
            builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(settings.max_concurrent)
            .build(connector);
        Ok(Some(Self {
            client,
            template,
            auth: settings.auth.clone(),
            name_pointer: settings.name_pointer.clone(),
            address_pointer: settings.address_pointer.clone(),
        }))
    }

    /// The URL template without its query string, for logs.
    pub(crate) fn redacted_url(&self) -> &str {
        self.template.redacted()
    }

    /// Asks the service about one number. Not bounded in time: the caller applies the
    /// request timeout.
    pub(crate) async fn fetch(
        &self,
        e164: &str,
        national: &str,
    ) -> Result<DirectoryAnswer, LookupError> {
        let uri: Uri =
            self.template
                .expand(e164, national)
                .parse()
                .map_err(|_| LookupError::BadTemplate {
                    reason: "does not expand to a valid URL",
                })?;
        let mut request = Request::get(uri).header(ACCEPT, "application/json").header(
            USER_AGENT,
            concat!("sentralbord/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| LookupError::BadTemplate {
                reason: "does not expand to a valid request",
            })?;
        let response = self.client.request(request).await?;
        match response.status() {
            StatusCode::OK => {
                let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                    .collect()
                    .await
                    .map_err(LookupError::Body)?
                    .to_bytes();
                self.parse(&body)
            }
            StatusCode::NOT_FOUND => Ok(DirectoryAnswer::NotFound),
            status => Err(LookupError::Status(status.as_u16())),
        }
    }

    /// Reads name and address out of a 200 answer.
    pub(crate) fn parse(&self, body: &[u8]) -> Result<DirectoryAnswer, LookupError> {
        let json: serde_json::Value = serde_json::from_slice(body)?;
        let text_at = |pointer: &str, max: usize| {
            json.pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| clean_text(s, max))
        };
        let Some(name) = text_at(&self.name_pointer, MAX_NAME_CHARS) else {
            return Ok(DirectoryAnswer::NotFound);
        };
        let address = if self.address_pointer.is_empty() {
            None
        } else {
            text_at(&self.address_pointer, MAX_ADDRESS_CHARS)
        };
        Ok(DirectoryAnswer::Found { name, address })
    }
}
