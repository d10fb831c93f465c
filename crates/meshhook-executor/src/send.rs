//! Sending one attempt: secrets, SSRF guard, circuit breaker, the request,
//! and the classification of what came back into the event to record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use meshhook_core::backoff::{is_retryable_status, plan_retry};
use meshhook_core::breaker::{self, Admission};
use meshhook_core::event::{Event, HttpErrorKind, HttpRequest};
use meshhook_core::template;
use meshhook_db::vault::{self, Secrets};
use meshhook_db::{Result, breakers};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::Context;
use crate::egress::{Egress, Refused, Resolver};
use crate::job::Job;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// What replaces a secret value found in text that is about to be recorded.
const REDACTED: &str = "[redacted]";

/// The shared HTTP client: rustls, no proxies (a proxy would bypass the
/// guard), DNS through the guard, redirects checked hop by hop.
pub(crate) fn client(egress: &Arc<Egress>, user_agent: &str) -> reqwest::Result<reqwest::Client> {
    let guard = egress.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            return attempt.error("redirect to a scheme other than http(s)");
        }
        // Names are checked by the resolver; IP literals skip it.
        if let Some(ip) = literal_ip(attempt.url())
            && let Err(refused) = guard.check_ip(ip)
        {
            return attempt.error(refused);
        }
        attempt.follow()
    });
    reqwest::Client::builder()
        .user_agent(user_agent)
        .no_proxy()
        .redirect(redirects)
        .dns_resolver(Resolver::new(egress.clone()))
        .build()
}

fn literal_ip(url: &Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

/// What the breaker should learn from the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Up,
    Down,
}

/// The event to record, and the breaker update to record with it.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub event: Event,
    pub breaker: Option<(String, Health)>,
}

impl Outcome {
    fn failed(
        job: &Job,
        kind: HttpErrorKind,
        error: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    ) -> Self {
        let retry = kind
            .is_retryable()
            .then(|| {
                plan_retry(
                    &job.retry,
                    job.attempt,
                    retry_after,
                    rand::random::<f64>(),
                    Utc::now(),
                )
            })
            .flatten();
        Outcome {
            event: Event::HttpAttemptFailed {
                node_id: job.node_id.clone(),
                attempt: job.attempt,
                error,
                kind,
                status,
                retry,
            },
            breaker: None,
        }
    }

    fn with_breaker(mut self, host: &str, health: Health) -> Self {
        self.breaker = Some((host.to_owned(), health));
        self
    }

    /// [`Self::with_breaker`], except that a success leaves a quiet breaker
    /// (closed, no failures counted) alone: there is nothing to reset, and
    /// the recording transaction skips the breaker row entirely.
    fn learn(self, host: &str, health: Health, quiet: bool) -> Self {
        if quiet && health == Health::Up {
            self
        } else {
            self.with_breaker(host, health)
        }
    }
}

/// The outcome of a job given up on its queue's last delivery: the attempt
/// fails without being sent again, and is not retried.
pub(crate) fn abandoned(job: &Job) -> Outcome {
    Outcome::failed(
        job,
        HttpErrorKind::Other,
        format!(
            "abandoned after {} deliveries of the job: none of them recorded a result (the worker crashed or stalled each time)",
            job.deliveries - 1
        ),
        None,
        None,
    )
}

/// Performs the attempt. `Err` only for database failures (the job is then
/// retried after its visibility timeout); everything the remote side or the
/// request itself does wrong becomes an event.
pub(crate) async fn perform(ctx: &Context, job: &Job) -> Result<Outcome> {
    // Secrets, resolved now and only for this send.
    let symbolic = serde_json::to_value(&job.request)
        .map_err(|e| meshhook_db::Error::Corrupt(e.to_string()))?;
    let mut names = template::secret_refs(&symbolic);
    names.extend(template::secret_refs(&Value::String(
        job.idempotency_key.clone(),
    )));
    let secrets = if names.is_empty() {
        Secrets::default()
    } else {
        let mut conn = ctx.pool.acquire().await?;
        match vault::resolve(
            &mut conn,
            job.project_id,
            &names,
            &ctx.keyring,
            Some(job.run_id),
        )
        .await
        {
            Ok(s) => s,
            Err(vault::Error::Db(e)) => return Err(e),
            Err(e) => {
                tracing::info!(error = %e, "secret unavailable");
                return Ok(Outcome::failed(
                    job,
                    HttpErrorKind::Secret,
                    e.to_string(),
                    None,
                    None,
                ));
            }
        }
    };
    let clean = |text: String| scrub(text, &secrets);

    // Resolution also undoes template escapes, so it runs even without secrets.
    let lookup = |name: &str| secrets.get(name).map(|v| v.expose().to_owned());
    let resolved = template::resolve_secrets(&symbolic, lookup)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value::<HttpRequest>(v).map_err(|e| clean(e.to_string())));
    let key = template::resolve_str(&job.idempotency_key, lookup);
    let (request, key) = match (resolved, key) {
        (Ok(r), Ok(k)) => (r, k),
        (Err(e), _) => return Ok(Outcome::failed(job, HttpErrorKind::Secret, e, None, None)),
        (_, Err(e)) => {
            return Ok(Outcome::failed(
                job,
                HttpErrorKind::Secret,
                e.to_string(),
                None,
                None,
            ));
        }
    };

    let built = match build(&request, &key) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Outcome::failed(
                job,
                HttpErrorKind::InvalidRequest,
                clean(e),
                None,
                None,
            ));
        }
    };
    if let Some(ip) = literal_ip(&built.url)
        && let Err(refused) = ctx.egress.check_ip(ip)
    {
        tracing::info!(%refused, "request refused by the SSRF guard");
        return Ok(Outcome::failed(
            job,
            HttpErrorKind::Ssrf,
            refused.to_string(),
            None,
            None,
        ));
    }

    // Circuit breaker admission. A closed breaker admits without changing,
    // so the common case is one unlocked read; only an open or half-open
    // breaker takes the row lock, in its own short transaction so other
    // workers see the probe count at once.
    let host = built.breaker_key.clone();
    let now = Utc::now();
    let seen = {
        let mut conn = ctx.pool.acquire().await?;
        breakers::get(&mut conn, &host).await?
    };
    let quiet = seen.is_none_or(|b| b.is_quiet());
    let admission = match seen {
        None
        | Some(breaker::Breaker {
            state: breaker::State::Closed { .. },
            ..
        }) => Admission::Allow,
        Some(_) => {
            let mut tx = ctx.pool.begin().await?;
            let mut breaker =
                breakers::lock_or_default(&mut tx, &host, ctx.options.breaker).await?;
            let admission = breaker.check(now);
            breakers::save(&mut tx, &host, &breaker).await?;
            tx.commit().await?;
            admission
        }
    };
    if let Admission::Reject { until } = admission {
        tracing::info!(%host, "circuit open; not sent");
        let wait = (until - now).to_std().unwrap_or_default();
        return Ok(Outcome::failed(
            job,
            HttpErrorKind::CircuitOpen,
            format!(
                "circuit breaker for {host} is open until {}",
                until.to_rfc3339()
            ),
            None,
            Some(wait),
        ));
    }

    let timeout = Duration::from_millis(request.timeout_ms.max(1));
    let started = Instant::now();
    let mut req = ctx
        .client
        .request(built.method, built.url)
        .headers(built.headers)
        .timeout(timeout);
    if let Some(body) = &request.body {
        req = req.json(body);
    }
    let sent = req.send().await;
    let metrics = &meshhook_metrics::METRICS;
    metrics.http_call_duration.observe(started.elapsed());
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            metrics
                .http_calls
                .inc(if e.is_timeout() { "timeout" } else { "error" });
            return Ok(transport_failure(job, e, timeout, &host, &secrets));
        }
    };
    let status = response.status();
    let code = status.as_u16();
    metrics.http_calls.inc(meshhook_metrics::status_class(code));
    let health = if matches!(code, 408 | 429 | 500..=599) {
        Health::Down
    } else {
        Health::Up
    };
    if is_retryable_status(&job.retry, code) {
        let retry_after = retry_after(response.headers());
        let reason = status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        tracing::info!(status = code, "retryable status");
        return Ok(Outcome::failed(
            job,
            HttpErrorKind::Status,
            format!("HTTP {code}{reason}"),
            Some(code),
            retry_after,
        )
        .learn(&host, health, quiet));
    }
    let headers = response_headers(response.headers(), &secrets);
    let is_json = headers
        .get("content-type")
        .is_some_and(|ct| ct.contains("json"));
    let (bytes, truncated) = match read_capped(response, ctx.options.max_response_bytes).await {
        Ok(b) => b,
        Err(e) => return Ok(transport_failure(job, e, timeout, &host, &secrets)),
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(status = code, duration_ms, truncated, "response recorded");
    Ok(Outcome {
        event: Event::HttpResponded {
            node_id: job.node_id.clone(),
            attempt: job.attempt,
            status: code,
            headers,
            body: body_value(&bytes, is_json, truncated, &secrets),
            duration_ms,
            truncated,
        },
        breaker: None,
    }
    .learn(&host, health, quiet))
}

/// A request ready to send.
struct Built {
    method: Method,
    url: Url,
    headers: HeaderMap,
    breaker_key: String,
}

/// Builds the request. Error texts name fields, never values.
fn build(request: &HttpRequest, idempotency_key: &str) -> Result<Built, String> {
    let mut url = Url::parse(&request.url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported URL scheme `{}` (use http or https)",
            url.scheme()
        ));
    }
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return Err("the URL has no host".to_owned());
    };
    if !request.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&request.query);
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name `{name}`"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("header `{name}` has an invalid value"))?;
        headers.append(name, value);
    }
    let key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| "the idempotency key is not a valid header value".to_owned())?;
    headers.insert(HeaderName::from_static("idempotency-key"), key);
    let breaker_key = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Ok(Built {
        method: Method::from_bytes(request.method.as_str().as_bytes())
            .map_err(|_| "invalid method".to_owned())?,
        url,
        headers,
        breaker_key,
    })
}

/// Classifies a failure to get (or read) a response.
fn transport_failure(
    job: &Job,
    e: reqwest::Error,
    timeout: Duration,
    host: &str,
    secrets: &Secrets,
) -> Outcome {
    if let Some(refused) = find_source::<Refused>(&e) {
        tracing::info!(%refused, "request refused by the SSRF guard");
        return Outcome::failed(job, HttpErrorKind::Ssrf, refused.to_string(), None, None);
    }
    let (kind, health) = if e.is_timeout() {
        (HttpErrorKind::Timeout, Some(Health::Down))
    } else if e.is_builder() {
        (HttpErrorKind::InvalidRequest, None)
    } else if e.is_redirect() {
        (HttpErrorKind::Other, None)
    } else {
        (HttpErrorKind::Connect, Some(Health::Down))
    };
    let error = if kind == HttpErrorKind::Timeout {
        format!("no response within {} ms", timeout.as_millis())
    } else {
        scrub(describe(e), secrets)
    };
    tracing::info!(?kind, error = %error, "attempt failed");
    let outcome = Outcome::failed(job, kind, error, None, None);
    match health {
        Some(h) => outcome.with_breaker(host, h),
        None => outcome,
    }
}

/// The error and its causes, without the URL (which may carry secrets).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// `Retry-After`: delay-seconds or an HTTP-date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn response_headers(headers: &HeaderMap, secrets: &Secrets) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = scrub(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
            secrets,
        );
        out.entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

/// JSON when declared and complete, else text (lossy UTF-8), `null` when empty.
fn body_value(bytes: &[u8], is_json: bool, truncated: bool, secrets: &Secrets) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    let text = scrub(String::from_utf8_lossy(bytes).into_owned(), secrets);
    if is_json
        && !truncated
        && let Ok(v) = serde_json::from_str(&text)
    {
        return v;
    }
    Value::String(text)
}

/// Removes secret values (echoed back by a server, or inside an error) from
/// text about to be recorded.
fn scrub(mut text: String, secrets: &Secrets) -> String {
    for value in secrets.values() {
        let v = value.expose();
        if v.len() >= 4 && text.contains(v) {
            text = text.replace(v, REDACTED);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshhook_core::definition::HttpMethod;

    fn request(url: &str) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            url: url.to_owned(),
            headers: BTreeMap::from([("X-Trace".to_owned(), "abc".to_owned())]),
            query: BTreeMap::from([("a b".to_owned(), "c&d".to_owned())]),
            body: None,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn builds_url_headers_and_breaker_key() {
        let b = build(&request("https://API.example.com:8443/x?y=1"), "run-node").expect("builds");
        assert_eq!(
            b.url.as_str(),
            "https://api.example.com:8443/x?y=1&a+b=c%26d"
        );
        assert_eq!(b.headers["idempotency-key"], "run-node");
        assert_eq!(b.headers["x-trace"], "abc");
        assert_eq!(b.breaker_key, "api.example.com:8443");
        assert_eq!(
            build(&request("http://example.com/"), "k").map(|b| b.breaker_key),
            Ok("example.com".to_owned())
        );
        assert!(build(&request("ftp://example.com/"), "k").is_err());
        assert!(build(&request("not a url"), "k").is_err());
    }

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).expect("ascii"),
        );
        let d = retry_after(&h).expect("date");
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn bodies() {
        let none = Secrets::default();
        assert_eq!(body_value(b"", true, false, &none), Value::Null);
        assert_eq!(
            body_value(br#"{"a":1}"#, true, false, &none),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            body_value(br#"{"a":1}"#, false, false, &none),
            Value::String(r#"{"a":1}"#.into())
        );
        assert_eq!(
            body_value(br#"{"a":"#, true, true, &none),
            Value::String(r#"{"a":"#.into())
        );
    }
}
