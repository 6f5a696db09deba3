//! What a WebSocket connection shares between the event loop, which reads
//! and decodes frames, and the app's task, which receives the messages: an
//! inbox of events, with back-pressure. Frames themselves are
//! `http::websocket`'s.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Bytes of messages the app has not received yet before the event loop
/// stops reading the connection (TCP then pushes back on the client).
const INBOX_LIMIT: usize = 1 << 20;

/// What the client did, as the app's `receive` will report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Text(String),
    Binary(Vec<u8>),
    /// The connection is closing: the client's close frame (its code, or
    /// 1005 when it gave none), a protocol error corral closed for, the
    /// worker stopping (1001), or the connection lost (1006).
    Closed {
        code: u16,
        reason: String,
    },
}

#[derive(Default)]
struct Queue {
    events: VecDeque<WsEvent>,
    bytes: usize,
    /// The event loop stopped reading until the app catches up.
    paused: bool,
}

/// Messages from the client not yet received by the app.
#[derive(Default)]
pub struct Inbox {
    q: Mutex<Queue>,
}

fn size(e: &WsEvent) -> usize {
    match e {
        WsEvent::Text(t) => t.len(),
        WsEvent::Binary(b) => b.len(),
        WsEvent::Closed { .. } => 0,
    }
}

impl Inbox {
    /// Queue an event; true when the event loop should stop reading.
    pub fn push(&self, e: WsEvent) -> bool {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        q.bytes += size(&e);
        q.events.push_back(e);
        if q.bytes > INBOX_LIMIT {
            q.paused = true;
        }
        q.paused
    }

    /// The next event, and whether reading should resume (the app caught
    /// up with a connection the event loop had paused).
    pub fn pop(&self) -> (Option<WsEvent>, bool) {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let e = q.events.pop_front();
        if let Some(e) = &e {
            q.bytes -= size(e);
        }
        let resume = q.paused && q.bytes <= INBOX_LIMIT / 2;
        if resume {
            q.paused = false;
        }
        (e, resume)
    }

    pub fn paused(&self) -> bool {
        self.q.lock().unwrap_or_else(|e| e.into_inner()).paused
    }
}

/// A WebSocket request as the asyncio side receives it.
pub struct WsInit {
    /// `Sec-WebSocket-Accept` for the handshake.
    pub accept: String,
    /// What the client offered in `Sec-WebSocket-Protocol`.
    pub subprotocols: Vec<String>,
    /// permessage-deflate, when the client offered it in a form the server
    /// honours: the `101` says so and the app's messages are compressed.
    pub deflate: Option<crate::http::deflate::Agreement>,
    pub inbox: std::sync::Arc<Inbox>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_inbox_pauses_reading_until_half_drained() {
        let inbox = Inbox::default();
        let big = vec![0u8; INBOX_LIMIT / 4 + 1];
        for _ in 0..3 {
            assert!(!inbox.push(WsEvent::Binary(big.clone())));
        }
        assert!(inbox.push(WsEvent::Binary(big.clone())), "over the limit");
        // Four quarters and a little: over half until the third is taken.
        assert!(!inbox.pop().1, "still over half");
        assert!(!inbox.pop().1, "still over half");
        assert!(inbox.paused());
        assert!(inbox.pop().1, "resume once at half");
        assert!(!inbox.paused());
        assert!(matches!(inbox.pop().0, Some(WsEvent::Binary(_))));
        assert_eq!(inbox.pop(), (None, false));
    }
}
