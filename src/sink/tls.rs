//! Trust for the remote sinks' HTTPS: the certificates of a private CA's
//! PEM file (`ca_file`), for on-premises servers. Depends on nothing else
//! in the crate (but the error shape), so config checks can read a CA file
//! too.

use std::path::Path;

use ureq::tls::{Certificate, PemItem};

crate::error::context_error!(
    /// A CA file that could not be read or holds no certificate, named.
    CaFileError,
    "CA file "
);

/// The certificates of a PEM file (a private CA and any intermediates).
/// Errors name the file and say what is wrong with it.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, CaFileError> {
    let pem = std::fs::read(path).map_err(|e| CaFileError::caused(path.display().to_string(), e))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(CaFileError::caused(format!("{}: not readable as PEM", path.display()), e)),
        }
    }
    if certs.is_empty() {
        return Err(CaFileError::new(format!(
            "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_that_are_missing_or_hold_no_certificate_are_named() {
        let d = std::env::temp_dir().join(format!("faceflow-tls-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let e = read_ca_file(&d.join("missing.pem")).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::write(d.join("key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = read_ca_file(&d.join("key.pem")).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
