//! Whether the request a connection was taken for is still running: the
//! HTTP envelope marks every poll of a request's handler, so a connection
//! dropped outside one was dropped with its request unfinished (its time
//! limit passed, or its client went away), perhaps mid-query.
//!
//! A thread-local counter rather than a flag carried by each request: two
//! writes per poll, no allocation, and nothing for a handler to forget.

use std::cell::Cell;

thread_local! {
    static POLLING: Cell<u32> = const { Cell::new(0) };
}

/// Held for the length of one poll of a request's handler.
pub struct HandlerPoll(());

impl HandlerPoll {
    pub fn enter() -> Self {
        POLLING.with(|p| p.set(p.get() + 1));
        HandlerPoll(())
    }
}

impl Drop for HandlerPoll {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(p.get() - 1));
    }
}

/// Whether this thread is polling a request's handler right now.
pub(super) fn polling() -> bool {
    POLLING.with(|p| p.get() > 0)
}
