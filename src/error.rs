//! The shape of faceflow's stage errors: what was being done, naming the
//! camera, file or sink (the context), and the error that caused it, if
//! any, kept as the `source()` so the chain is not flattened into text.
//! One macro makes each stage's own type, so a decode error cannot be
//! passed off as a sink error.

/// Declares `$name`: a context message and an optional cause, `Display`ed
/// as `{prefix}{context}` and then `: {cause}` when there is one.
macro_rules! context_error {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            context: String,
            cause: Option<Box<dyn std::error::Error + Send + Sync>>,
        }

        // Not every error uses every constructor.
        #[allow(dead_code)]
        impl $name {
            /// An error that is its own cause: `context` says what was wrong.
            pub fn new(context: impl Into<String>) -> Self {
                $name { context: context.into(), cause: None }
            }
            /// `context` failed because of `cause`.
            pub(crate) fn caused(
                context: impl Into<String>,
                cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
            ) -> Self {
                $name { context: context.into(), cause: Some(cause.into()) }
            }
            /// What was being done (without the cause).
            pub(crate) fn context(&self) -> &str {
                &self.context
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($prefix)?;
                f.write_str(&self.context)?;
                match &self.cause {
                    Some(c) => write!(f, ": {c}"),
                    None => Ok(()),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match &self.cause {
                    Some(c) => Some(c.as_ref()),
                    None => None,
                }
            }
        }
    };
}

pub(crate) use context_error;

#[cfg(test)]
mod tests {
    context_error!(
        /// A test error.
        TestError,
        "test: "
    );

    #[test]
    fn context_and_cause_are_displayed_and_the_cause_chained() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = TestError::caused("camera door: open a.mp4", io);
        assert_eq!(e.to_string(), "test: camera door: open a.mp4: no such file");
        let source = std::error::Error::source(&e).expect("the cause is the source");
        assert_eq!(source.to_string(), "no such file");
        let alone = TestError::new("no video stream");
        assert_eq!(alone.to_string(), "test: no video stream");
        assert!(std::error::Error::source(&alone).is_none());
        assert_eq!(alone.context(), "no video stream");
    }
}
