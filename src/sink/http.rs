//! Blocking HTTP plumbing shared by the remote sinks: a `ureq` agent with a
//! global timeout, multipart/form-data bodies, and the classification of
//! outcomes into done / retry / permanent. TLS is always verified: against
//! Mozilla's roots, or against a private CA (`ca_file`) for on-premises
//! servers.

use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::Delivery;

/// An agent with a global timeout, trusting `roots` (None: Mozilla's roots).
pub fn agent(timeout: Duration, roots: Option<Vec<Certificate<'static>>>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false);
    if let Some(certs) = roots {
        b = b.tls_config(TlsConfig::builder().root_certs(RootCerts::from(certs)).build());
    }
    b.build().into()
}

/// A multipart/form-data body built in memory (events are small).
pub(crate) struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    pub fn new(seed: &str) -> Self {
        // Any string absent from the parts works; JPEG bytes cannot contain
        // this ASCII run by chance in practice, and the seed varies it.
        Multipart {
            boundary: format!("faceflow-{:016x}", super::spool::crc32(seed.as_bytes()) as u64 * 0x9E37_79B9),
            body: Vec::new(),
        }
    }
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.body.extend_from_slice(
            format!("--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n", self.boundary)
                .as_bytes(),
        );
        self
    }
    pub fn file(&mut self, name: &str, filename: &str, content_type: &str, data: &[u8]) -> &mut Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (format!("multipart/form-data; boundary={}", self.boundary), self.body)
    }
}

/// Sends and reads the reply within `timeout`; transport failures become
/// `Err(Retry)`, no answer in time `Err(TimedOut)`.
pub fn send(
    req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String), Delivery> {
    let req = req.config().timeout_global(Some(timeout)).build();
    match req.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
            Ok((status, text))
        }
        Err(ureq::Error::Timeout(t)) => Err(Delivery::TimedOut(format!("no answer in time ({t})"))),
        Err(e)
            if matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_)) || e.to_string().contains("certificate") =>
        {
            Err(Delivery::Retry(format!(
                "TLS: {e} (is the server's certificate signed by a CA this sink trusts? ca_file names a private CA)"
            )))
        }
        Err(e) => Err(Delivery::Retry(format!("transport: {e}"))),
    }
}

/// Status classes every remote sink shares: 408, 429 and 5xx are worth a
/// retry; other 4xx are permanent. 2xx is left to the caller.
pub(crate) fn classify_error_status(status: u16, body: &str) -> Option<Delivery> {
    let short: String = body.chars().take(300).collect();
    match status {
        200..=299 => None,
        408 | 429 | 500..=599 => Some(Delivery::Retry(format!("HTTP {status}: {short}"))),
        _ => Some(Delivery::Permanent(format!("HTTP {status}: {short}"))),
    }
}

/// RFC 3339 UTC time of a Unix timestamp in milliseconds.
pub(crate) fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, unix_ms % 1000)
}

pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_795_353_627_799), "2026-11-22T13:20:27.799Z");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert!(classify_error_status(200, "").is_none());
        assert!(matches!(classify_error_status(503, ""), Some(Delivery::Retry(_))));
        assert!(matches!(classify_error_status(429, ""), Some(Delivery::Retry(_))));
        assert!(matches!(classify_error_status(408, ""), Some(Delivery::Retry(_))));
        assert!(
            matches!(classify_error_status(400, "BAD_PARAM"), Some(Delivery::Permanent(m)) if m.contains("BAD_PARAM"))
        );
        assert!(matches!(classify_error_status(403, ""), Some(Delivery::Permanent(_))));
    }
}
