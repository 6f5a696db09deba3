//! A request body streamed to an ASGI app while it arrives: what the event
//! loop, which reads and decodes the body, shares with the request's
//! `receive`. The bytes decoded and not yet received wait here, up to a
//! limit past which the event loop stops reading (TCP then pushes back on
//! the client until the app catches up).

use std::sync::Mutex;

/// Body bytes the app has not received yet before the event loop stops
/// reading the connection. Also the most one `http.request` message holds.
pub const UPLOAD_LIMIT: usize = 256 << 10;

/// Where a client's `Expect: 100-continue` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continue {
    /// Not asked for, or settled.
    No,
    /// The client waits for it; sent only if the app asks for the body.
    Owed,
    /// The app asked for the body: the event loop is to send it.
    Wanted,
}

#[derive(Debug)]
struct State {
    /// Decoded and not yet received by the app.
    data: Vec<u8>,
    /// The body's last byte was decoded.
    complete: bool,
    /// The event loop stopped reading until the app catches up.
    paused: bool,
    expect: Continue,
}

/// A body on its way to the app.
#[derive(Debug)]
pub struct Upload {
    s: Mutex<State>,
}

/// Where a body stands after the event loop pushed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The app had nothing to take before: it must be told.
    pub told: bool,
    /// Reading must stop until the app catches up.
    pub paused: bool,
    /// The body's last byte was decoded.
    pub complete: bool,
}

/// What the app's `receive` takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Taken {
    pub data: Vec<u8>,
    /// `data` ends the body.
    pub last: bool,
    /// The event loop is to hear from the app: it paused reading and the
    /// app caught up, or the app wants the `100 Continue` sent.
    pub wake: bool,
}

impl Upload {
    /// A body whose first bytes (`prefix`) came with its head; `expect`:
    /// the client waits for `100 Continue` before it sends the rest.
    pub fn new(prefix: Vec<u8>, expect: bool) -> Upload {
        Upload {
            s: Mutex::new(State {
                data: prefix,
                complete: false,
                paused: false,
                expect: if expect { Continue::Owed } else { Continue::No },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.s.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event loop decodes into the body's buffer: `decode` appends
    /// bytes and says whether the body is complete.
    pub fn push<E>(
        &self,
        decode: impl FnOnce(&mut Vec<u8>) -> Result<bool, E>,
    ) -> Result<Pushed, E> {
        let mut s = self.lock();
        let was_empty = s.data.is_empty() && !s.complete;
        let before = s.data.len();
        let done = decode(&mut s.data)?;
        if s.data.len() > before {
            // The client sent without waiting: no 100 is owed any more.
            s.expect = Continue::No;
        }
        s.complete |= done;
        if s.data.len() >= UPLOAD_LIMIT && !s.complete {
            s.paused = true;
        }
        Ok(Pushed {
            told: was_empty && (s.complete || !s.data.is_empty()),
            paused: s.paused,
            complete: s.complete,
        })
    }

    /// Stopped until the app catches up.
    pub fn paused(&self) -> bool {
        self.lock().paused
    }

    /// Every byte of the body was decoded.
    pub fn complete(&self) -> bool {
        self.lock().complete
    }

    /// The app asked for the body while the client waits for `100
    /// Continue`: true once, when the event loop is to send it.
    pub fn take_continue(&self) -> bool {
        let mut s = self.lock();
        if s.expect == Continue::Wanted {
            s.expect = Continue::No;
            true
        } else {
            false
        }
    }

    /// For the app's `receive`: what was decoded (up to [`UPLOAD_LIMIT`]).
    /// Empty and not `last`: wait for the event loop's note.
    pub fn take(&self) -> Taken {
        let mut s = self.lock();
        let data = if s.data.len() > UPLOAD_LIMIT {
            let rest = s.data.split_off(UPLOAD_LIMIT);
            std::mem::replace(&mut s.data, rest)
        } else {
            std::mem::take(&mut s.data)
        };
        let last = s.complete && s.data.is_empty();
        let mut wake = false;
        if s.paused && s.data.len() <= UPLOAD_LIMIT / 2 {
            s.paused = false;
            wake = true;
        }
        if data.is_empty() && !last && s.expect == Continue::Owed {
            s.expect = Continue::Wanted;
            wake = true;
        }
        Taken { data, last, wake }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (told, paused)
    fn push(u: &Upload, bytes: &[u8], done: bool) -> (bool, bool) {
        let p = u
            .push(|out| {
                out.extend_from_slice(bytes);
                Ok::<_, ()>(done)
            })
            .unwrap();
        assert_eq!(p.complete, done);
        (p.told, p.paused)
    }

    #[test]
    fn the_app_is_told_when_bytes_come_to_an_empty_buffer() {
        let u = Upload::new(b"head".to_vec(), false);
        assert_eq!(push(&u, b"-more", false), (false, false), "not empty");
        let t = u.take();
        assert_eq!(
            (t.data.as_slice(), t.last, t.wake),
            (&b"head-more"[..], false, false)
        );
        let t = u.take();
        assert!(t.data.is_empty() && !t.last, "nothing yet: wait");
        assert_eq!(push(&u, b"", true), (true, false), "the end is news too");
        let t = u.take();
        assert!(t.data.is_empty() && t.last);
    }

    #[test]
    fn a_full_buffer_pauses_reading_until_the_app_takes_it() {
        let u = Upload::new(Vec::new(), false);
        let big = vec![7u8; UPLOAD_LIMIT / 2];
        assert_eq!(push(&u, &big, false), (true, false));
        assert_eq!(push(&u, &big, false), (false, true), "at the limit");
        assert_eq!(
            push(&u, &big, false),
            (false, true),
            "what was read already"
        );
        assert!(u.paused());
        // One message holds at most the limit; what is left is half.
        let t = u.take();
        assert_eq!(t.data.len(), UPLOAD_LIMIT);
        assert!(!t.last && t.wake, "reading resumes");
        assert!(!u.paused());
        let t = u.take();
        assert_eq!(t.data.len(), UPLOAD_LIMIT / 2);
        assert!(!t.wake);
    }

    #[test]
    fn a_body_that_ends_at_the_limit_does_not_pause() {
        let u = Upload::new(Vec::new(), false);
        assert_eq!(push(&u, &vec![1u8; UPLOAD_LIMIT], true), (true, false));
        let t = u.take();
        assert!(t.last && !t.wake);
    }

    #[test]
    fn continue_is_sent_only_when_the_app_asks_for_the_body() {
        let u = Upload::new(Vec::new(), true);
        assert!(!u.take_continue(), "not before the app asks");
        let t = u.take();
        assert!(t.data.is_empty() && t.wake, "the app asking wakes the loop");
        assert!(u.take_continue());
        assert!(!u.take_continue(), "once");
        assert!(!u.take().wake, "asked already");

        let eager = Upload::new(Vec::new(), true);
        push(&eager, b"sent without waiting", false);
        assert!(!eager.take().wake);
        assert!(!eager.take_continue(), "nothing owed once the body comes");
    }
}
