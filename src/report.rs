//! One line for an error and everything that caused it, for logs and the
//! CLI: errors keep their causes as sources (`#[source]`), and this is the
//! one place that spells the chain out. A cause whose text the error's own
//! message already contains is not repeated.

use std::error::Error;

/// `error: cause: deeper cause`, each link once.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = match cause.downcast_ref::<tokio_postgres::Error>() {
            Some(pg) => crate::pg::describe(pg),
            None => cause.to_string(),
        };
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the outbox")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the outbox: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn causes_are_spelled_out_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        assert_eq!(
            chain(&Outer(io())),
            "cannot open the outbox: permission denied"
        );
        assert_eq!(
            chain(&Repeating(io())),
            "cannot open the outbox: permission denied"
        );
    }
}
