//! Log setup: `log` + `env_logger`, journald-friendly.
//!
//! Under systemd (JOURNAL_STREAM set) each line starts with a `<N>` syslog
//! priority so journald keeps the level, and carries no timestamp (journald
//! adds its own). On a terminal, lines carry a UTC timestamp instead.

use std::io::Write;

/// syslog priority for a log level (sd-daemon(3) prefixes).
pub(crate) fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

pub fn init() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if journald {
        b.format(|buf, r| writeln!(buf, "<{}>{}: {}", syslog_priority(r.level()), r.target(), r.args()));
    } else {
        b.format(|buf, r| writeln!(buf, "{} {:<5} {}: {}", buf.timestamp_millis(), r.level(), r.target(), r.args()));
    }
    let _ = b.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(syslog_priority(log::Level::Error), 3);
        assert_eq!(syslog_priority(log::Level::Warn), 4);
        assert_eq!(syslog_priority(log::Level::Info), 6);
        assert_eq!(syslog_priority(log::Level::Debug), 7);
    }
}
