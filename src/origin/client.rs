//! The HTTP client under the store: what `object_store` would build from
//! its [`ClientOptions`], except that a redirect is never followed.
//!
//! reqwest follows up to ten redirects by default, to any host and port,
//! carrying the request's `Range`, `If-Match` and, from S3, the
//! `x-amz-security-token`: an origin (or whoever answers in its name) could
//! send them anywhere. Here a 3xx with a `Location` ends the request with a
//! [`Redirected`] error, which `object_store` does not retry; a 3xx without
//! one reaches `object_store`, which fails it too.

use object_store::client::{HttpClient, HttpConnector};
use object_store::{ClientConfigKey, ClientOptions};

/// Builds clients that refuse redirects.
#[derive(Debug, Default)]
pub struct NoRedirects;

/// A redirect the origin answered, refused.
#[derive(Debug)]
pub struct Redirected {
    pub status: u16,
    /// Where to, without its query: a store may sign one.
    pub to: String,
}

impl std::fmt::Display for Redirected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the media store answered a redirect ({} to {}), which is not followed",
            self.status, self.to
        )
    }
}

impl std::error::Error for Redirected {}

fn refuse(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    let mut to = attempt.url().clone();
    to.set_query(None);
    to.set_fragment(None);
    let _ = to.set_password(None);
    let _ = to.set_username("");
    let refused = Redirected {
        status: attempt.status().as_u16(),
        to: to.to_string(),
    };
    attempt.error(refused)
}

impl HttpConnector for NoRedirects {
    /// Honours the options [`super::Origin::new`] sets and those
    /// `object_store` adjusts per client (`allow_http`, the shorter connect
    /// timeout for instance metadata); no other is ever set.
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let value = |key: ClientConfigKey| options.get_config_value(&key);
        let bad = |key: ClientConfigKey, text: String| object_store::Error::Generic {
            store: "origin",
            source: format!("client option {key:?}: {text:?} not understood").into(),
        };
        let duration = |key: ClientConfigKey| match value(key) {
            None => Ok(None),
            Some(text) => humantime::parse_duration(&text)
                .map(Some)
                .map_err(|_| bad(key, text)),
        };
        // reqwest is built without a TLS provider of its own: ring, once
        // for the process (a second install is refused, harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("mp4-fcgi/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(refuse))
            // Decompression would make `Content-Length` lie about the object.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .https_only(value(ClientConfigKey::AllowHttp).as_deref() != Some("true"));
        if let Some(t) = duration(ClientConfigKey::Timeout)? {
            b = b.timeout(t);
        }
        if let Some(t) = duration(ClientConfigKey::ConnectTimeout)? {
            b = b.connect_timeout(t);
        }
        if let Some(t) = duration(ClientConfigKey::ReadTimeout)? {
            b = b.read_timeout(t);
        }
        if let Some(t) = duration(ClientConfigKey::PoolIdleTimeout)? {
            b = b.pool_idle_timeout(t);
        }
        if let Some(text) = value(ClientConfigKey::PoolMaxIdlePerHost) {
            let n = text
                .parse()
                .map_err(|_| bad(ClientConfigKey::PoolMaxIdlePerHost, text))?;
            b = b.pool_max_idle_per_host(n);
        }
        let client = b.build().map_err(|e| object_store::Error::Generic {
            store: "origin",
            source: Box::new(e),
        })?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn client_option_durations_read_back() {
        for d in [
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(90),
            Duration::from_millis(1500),
            Duration::from_secs(2 * 86400 + 3661),
        ] {
            let text = ClientOptions::new()
                .with_timeout(d)
                .get_config_value(&ClientConfigKey::Timeout)
                .unwrap();
            assert_eq!(humantime::parse_duration(&text).ok(), Some(d), "{text}");
        }
    }
}
