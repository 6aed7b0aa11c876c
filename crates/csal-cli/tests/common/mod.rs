//! Helpers shared by the `csal` binary's test files.

/// The value of a test server's variable: under CI a missing one is a
/// failure, locally a reported skip.
pub fn require(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set under CI: run the tests with cargo xtask test")
        }
        _ => {
            eprintln!("SKIP: {var} is not set (run through cargo xtask test / emulators run)");
            None
        }
    }
}
