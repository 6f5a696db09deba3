//! RFC 6455 WebSocket wire format, server side: the opening handshake
//! (recognising an upgrade request, computing `Sec-WebSocket-Accept`, the
//! `101` answer or the refusal) and frames (client frames decoded into whole
//! messages under the rules a server must enforce, server frames encoded).
//! Like the rest of `http` it turns bytes into values and values into bytes:
//! no sockets, no Python, no timers.
//!
//! The one extension corral negotiates is permessage-deflate (`deflate`):
//! with it, RSV1 marks a compressed data message, which the decoder
//! inflates; every other set RSV bit is an error. SHA-1 and base64 are implemented here,
//! privately, because the handshake is their only use and one 20-byte digest
//! per connection does not justify a dependency.

use super::deflate::Inflater;
use super::error::snippet;
use super::request::is_tchar;
use super::response::{error_response, push_http_date, SERVER};
use super::{RequestHead, Version};

/// The fixed GUID RFC 6455 §1.3 appends to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close code: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the endpoint is going away (server shutdown, worker restart).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the peer broke the framing rules.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code: a text message or close reason that is not UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code: a message larger than the configured limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the server hit an unexpected condition (an app error).
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
/// base64(SHA-1(key + [`GUID`])). The key is used exactly as sent, which is
/// what the client hashes on its side.
pub fn accept_key(client_key: &str) -> String {
    let mut data = Vec::with_capacity(client_key.len() + GUID.len());
    data.extend_from_slice(client_key.as_bytes());
    data.extend_from_slice(GUID.as_bytes());
    base64_encode(&sha1(&data))
}

// ---------------------------------------------------------------------------
// Opening handshake

/// A valid WebSocket upgrade request, as [`upgrade_request`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Key` as sent (24 base64 characters); give it to
    /// [`accept_key`].
    pub key: String,
    /// Offered subprotocols, in the client's order of preference, across
    /// every `Sec-WebSocket-Protocol` field. Each is an RFC 9110 token.
    pub subprotocols: Vec<String>,
    /// Offered extensions, one entry per list element with its parameters
    /// as sent, across every `Sec-WebSocket-Extensions` field. For the app's
    /// information only: corral negotiates none.
    pub extensions: Vec<String>,
}

/// A request that asked for a WebSocket upgrade and got it wrong.
/// [`UpgradeError::status`] says how to answer, [`UpgradeError::response`]
/// gives the bytes; either way the connection closes afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// RFC 6455 §4.1: the opening handshake is a GET.
    #[error("WebSocket upgrade with method {0:?}, not GET")]
    Method(String),
    /// RFC 6455 §4.1: HTTP/1.1 or later.
    #[error("WebSocket upgrade over HTTP/1.0")]
    Http10,
    /// `Connection` lacks the `upgrade` option.
    #[error("WebSocket upgrade without the upgrade option in Connection")]
    ConnectionNotUpgrade,
    /// No `Sec-WebSocket-Key`.
    #[error("WebSocket upgrade without Sec-WebSocket-Key")]
    MissingKey,
    /// A key that is not base64 of exactly 16 bytes.
    #[error("invalid Sec-WebSocket-Key {0:?}")]
    BadKey(String),
    /// A field RFC 6455 §11.3 allows once, sent more than once.
    #[error("{0} sent more than once")]
    Duplicate(&'static str),
    /// A `Sec-WebSocket-Protocol` element that is not a token.
    #[error("invalid Sec-WebSocket-Protocol {0:?}")]
    BadSubprotocol(String),
    /// A `Sec-WebSocket-Extensions` element with bytes outside visible
    /// ASCII.
    #[error("invalid Sec-WebSocket-Extensions {0:?}")]
    BadExtensions(String),
    /// No `Sec-WebSocket-Version`: answered like a wrong one, so the client
    /// learns which version to use.
    #[error("WebSocket upgrade without Sec-WebSocket-Version")]
    MissingVersion,
    /// A version other than 13, the only one RFC 6455 defines.
    #[error("unsupported Sec-WebSocket-Version {0:?}")]
    UnsupportedVersion(String),
}

/// Body of the `426` answer; the status has no reason phrase in
/// [`super::reason_phrase`], so it is spelled out here.
const UPGRADE_REQUIRED_BODY: &str = "426 Upgrade Required\n";

impl UpgradeError {
    /// The status to answer with: 426 for a missing or unsupported version
    /// (RFC 6455 §4.4), 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            UpgradeError::MissingVersion | UpgradeError::UnsupportedVersion(_) => 426,
            _ => 400,
        }
    }

    /// The complete error response, with `Connection: close` like
    /// [`error_response`]. The 426 one carries `Upgrade: websocket` (RFC
    /// 9110 §15.5.22) and `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    pub fn response(&self) -> Vec<u8> {
        if self.status() != 426 {
            return error_response(self.status());
        }
        let body = UPGRADE_REQUIRED_BODY;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"HTTP/1.1 426 Upgrade Required\r\nServer: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        push_http_date(&mut out);
        // RFC 9110 §7.8: whoever sends Upgrade lists it in Connection too.
        out.extend_from_slice(
            b"\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\n",
        );
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body.as_bytes());
        out
    }

    /// Length of the body [`UpgradeError::response`] sends, for the access
    /// log (the counterpart of [`super::error_body_len`]).
    pub fn body_len(&self) -> usize {
        match self.status() {
            426 => UPGRADE_REQUIRED_BODY.len(),
            s => super::error_body_len(s),
        }
    }
}

/// Whether `head` asks for a WebSocket upgrade and, if so, whether the ask
/// is valid (RFC 6455 §4.2.1).
///
/// `None`: no `Upgrade` field lists the `websocket` token, so this is an
/// ordinary request. `Some(Err(_))`: it asks and something is wrong; answer
/// with [`UpgradeError::response`]. Fields may be repeated and are read as
/// comma-separated lists, names and tokens compared ASCII case-insensitively.
pub fn upgrade_request(head: &RequestHead) -> Option<Result<Upgrade, UpgradeError>> {
    if !has_token(head, "upgrade", b"websocket") {
        return None;
    }
    Some(check_upgrade(head))
}

fn check_upgrade(head: &RequestHead) -> Result<Upgrade, UpgradeError> {
    if head.method != "GET" {
        return Err(UpgradeError::Method(snippet(head.method.as_bytes())));
    }
    if head.version == Version::Http10 {
        return Err(UpgradeError::Http10);
    }
    if !has_token(head, "connection", b"upgrade") {
        return Err(UpgradeError::ConnectionNotUpgrade);
    }
    let key = match single(head, "sec-websocket-key")? {
        None => return Err(UpgradeError::MissingKey),
        Some(k) => k,
    };
    if base64_decode(key).is_none_or(|raw| raw.len() != 16) {
        return Err(UpgradeError::BadKey(snippet(key)));
    }
    // base64 is ASCII, so this cannot fail once the key decoded.
    let key = String::from_utf8_lossy(key).into_owned();

    let mut subprotocols = Vec::new();
    for item in field_items(head, "sec-websocket-protocol") {
        if !item.iter().all(|&b| is_tchar(b)) {
            return Err(UpgradeError::BadSubprotocol(snippet(item)));
        }
        subprotocols.push(String::from_utf8_lossy(item).into_owned());
    }
    let mut extensions = Vec::new();
    for item in field_items(head, "sec-websocket-extensions") {
        if !item
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(UpgradeError::BadExtensions(snippet(item)));
        }
        extensions.push(String::from_utf8_lossy(item).into_owned());
    }

    match single(head, "sec-websocket-version")? {
        None => return Err(UpgradeError::MissingVersion),
        Some(b"13") => {}
        Some(v) => return Err(UpgradeError::UnsupportedVersion(snippet(v))),
    }
    Ok(Upgrade {
        key,
        subprotocols,
        extensions,
    })
}

/// The value of a field that must appear at most once.
fn single<'a>(head: &'a RequestHead, name: &'static str) -> Result<Option<&'a [u8]>, UpgradeError> {
    let mut found = head
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(h), None) => Ok(Some(&h.value)),
        (Some(_), Some(_)) => Err(UpgradeError::Duplicate(match name {
            "sec-websocket-key" => "Sec-WebSocket-Key",
            _ => "Sec-WebSocket-Version",
        })),
    }
}

/// Elements of every field called `name`, read as one comma-separated list
/// (RFC 9110 §5.3), OWS-trimmed, empty elements skipped.
fn field_items<'a>(head: &'a RequestHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    head.headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

fn has_token(head: &RequestHead, name: &str, token: &[u8]) -> bool {
    field_items(head, name).any(|item| item.eq_ignore_ascii_case(token))
}

/// Fields of the `101` that the server owns. The app cannot override the
/// handshake fields, cannot claim an extension the decoder does not
/// implement (its frames would then be refused), must name its subprotocol
/// through the `subprotocol` argument, and cannot frame a body that a `1xx`
/// does not have (RFC 9110 §8.6, §6.1).
const OWNED_101: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
];

/// The `101 Switching Protocols` response accepting an upgrade.
///
/// `accept` is [`accept_key`]'s result. `subprotocol` should be one the
/// client offered; it is left out if it is not a token. `headers` are the
/// app's extra fields, written in order after the handshake fields. Fields
/// the server owns are skipped (`Upgrade`, `Connection`, the
/// `Sec-WebSocket-*` ones, body framing and other hop-by-hop fields), and
/// so is any field whose name is not a token or whose value holds CR, LF
/// or NUL: the same rule as [`super::ResponseEncoder`], but skipping rather
/// than failing, because a handshake the app accepted cannot turn into a
/// 500. `Server` and `Date` are added unless the app gave them.
pub fn handshake_response(
    accept: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    headers: &[(Vec<u8>, Vec<u8>)],
) -> Vec<u8> {
    debug_assert!(base64_decode(accept.as_bytes()).is_some_and(|d| d.len() == 20));
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = subprotocol.filter(|p| !p.is_empty() && p.bytes().all(is_tchar)) {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(e) = extensions {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut has_server = false;
    let mut has_date = false;
    for (name, value) in headers {
        let bad_name = name.is_empty() || !name.iter().all(|&b| is_tchar(b));
        let bad_value = value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
        if bad_name
            || bad_value
            || OWNED_101
                .iter()
                .any(|o| name.eq_ignore_ascii_case(o.as_bytes()))
        {
            continue;
        }
        has_server |= name.eq_ignore_ascii_case(b"server");
        has_date |= name.eq_ignore_ascii_case(b"date");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim_ascii());
        out.extend_from_slice(b"\r\n");
    }
    super::response::push_server_and_date(&mut out, has_server, has_date);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------------------
// Frames

/// Frame opcodes RFC 6455 §5.2 defines; every other value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xa,
        }
    }

    /// The opcode for a 4-bit wire value, `None` for reserved values.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xa => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One whole message from the client. Fragmented data messages arrive
/// reassembled; control messages arrive as soon as their frame is complete,
/// even in the middle of a fragmented data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(String),
    Binary(Vec<u8>),
    /// The payload must be echoed in a pong (RFC 6455 §5.5.2).
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// `None` for an empty close payload (which RFC 6455 §7.1.5 reports as
    /// 1005 "no status received"), otherwise a valid code and its reason.
    Close(Option<(u16, String)>),
}

/// The client broke the protocol. The connection is finished: send a close
/// frame with `code` (and, if wanted, `reason`, e.g. via [`close_payload`])
/// and stop reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket close {code}: {reason}")]
pub struct Failure {
    /// [`CLOSE_PROTOCOL_ERROR`], [`CLOSE_INVALID_PAYLOAD`] or
    /// [`CLOSE_TOO_BIG`].
    pub code: u16,
    /// Short and ASCII, so it always fits a close frame.
    pub reason: &'static str,
}

fn protocol(reason: &'static str) -> Failure {
    Failure {
        code: CLOSE_PROTOCOL_ERROR,
        reason,
    }
}

/// Whether a peer may send `code` in a close frame: 1000-1003, 1007-1014
/// (1012-1014 are in IANA's registry: service restart, try again later,
/// bad gateway) and the 3000-4999 ranges for libraries and apps. 1004 is
/// reserved, and 1005, 1006 and 1015 exist only to report what happened
/// locally.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Longest frame head: 2 bytes, a 64-bit length, a 4-byte mask key.
const MAX_FRAME_HEAD: usize = 14;

/// Bytes of extended length that follow the second head byte.
fn extended_len(b1: u8) -> usize {
    match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// Upper bound on what one frame's declared length makes the decoder
/// reserve up front, so a lying length costs nothing until bytes arrive.
const RESERVE_CAP: usize = 64 << 10;

/// The frame whose payload is arriving.
#[derive(Debug)]
struct Frame {
    opcode: Opcode,
    fin: bool,
    mask: [u8; 4],
    remaining: u64,
    /// Offset into `mask` of the next payload byte.
    phase: usize,
}

/// A data message with fragments still to come.
#[derive(Debug)]
struct Partial {
    text: bool,
    /// RSV1 on its first frame: `data` is deflated (permessage-deflate).
    compressed: bool,
    data: Vec<u8>,
    /// Prefix of `data` known to be valid UTF-8 (text only); what lies
    /// beyond it is at most an incomplete sequence.
    checked: usize,
}

/// Turns the client's bytes into [`Message`]s, enforcing RFC 6455's rules
/// for what a server accepts (§5.1-§5.5, §5.6 and §7.4 for close payloads).
///
/// The decoder is streaming: it takes every byte it is given, keeps the
/// incomplete frame head (at most 14 bytes), the payload received so far
/// (unmasked) and the earlier fragments of a fragmented message, so the
/// caller never keeps any byte it has fed. See [`Decoder::decode`].
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    head: [u8; MAX_FRAME_HEAD],
    head_len: usize,
    frame: Option<Frame>,
    message: Option<Partial>,
    /// Payload of the control frame in progress.
    control: Vec<u8>,
    failed: Option<Failure>,
    /// permessage-deflate was agreed: RSV1 data messages are inflated.
    inflater: Option<Inflater>,
}

impl Decoder {
    /// A decoder refusing data messages (and so single data frames) longer
    /// than `max_message` bytes; 0 means no limit. Control frames have
    /// their own limit of 125 bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            head: [0; MAX_FRAME_HEAD],
            head_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            failed: None,
            inflater: None,
        }
    }

    /// With permessage-deflate agreed: data messages whose first frame has
    /// RSV1 set are inflated, and `max_message` bounds what they inflate to.
    pub fn with_inflater(mut self, inflater: Inflater) -> Self {
        self.inflater = Some(inflater);
        self
    }

    /// Feed the bytes that follow everything fed before.
    ///
    /// * `Ok(Some((message, n)))`: the first `n` bytes of `buf` were taken
    ///   and completed `message`; the rest of `buf` was not looked at. Drop
    ///   `n` bytes and call again with what remains (possibly nothing).
    /// * `Ok(None)`: no message completed, and all of `buf` was taken and
    ///   is kept inside the decoder; drop all of it and call again when more
    ///   bytes arrive.
    /// * `Err(failure)`: the client broke the protocol; see [`Failure`].
    ///   The decoder is finished and returns the same failure from then on.
    ///
    /// A failure is reported as soon as the offending bytes are fed: a bad
    /// frame head before its payload, a declared length over the limit
    /// before any of the payload is kept, invalid UTF-8 in a text message
    /// as soon as a byte cannot continue a valid sequence (except for a
    /// sequence left incomplete at the end of the message, and in a close
    /// reason, both found when the frame ends). The outcome therefore does
    /// not depend on how the bytes are split across calls. After a close
    /// message the decoder goes on decoding; RFC 6455 says no data follows
    /// it, and stopping is the caller's decision.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, Failure> {
        if let Some(failure) = &self.failed {
            return Err(failure.clone());
        }
        let result = self.run(buf);
        if let Err(failure) = &result {
            self.failed = Some(failure.clone());
        }
        result
    }

    fn run(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, Failure> {
        let mut pos = 0;
        loop {
            if self.frame.is_none() {
                pos += self.read_head(&buf[pos..])?;
            }
            let Some(frame) = self.frame.as_mut() else {
                return Ok(None);
            };
            let n = frame.remaining.min((buf.len() - pos) as u64) as usize;
            let chunk = &buf[pos..pos + n];
            pos += n;
            let dest = match (&mut self.message, frame.opcode.is_control()) {
                (Some(partial), false) => &mut partial.data,
                _ => &mut self.control,
            };
            let mask = frame.mask;
            let phase = frame.phase;
            dest.extend(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| b ^ mask[(phase + i) % 4]),
            );
            frame.phase = (phase + n) % 4;
            frame.remaining -= n as u64;
            let done = frame.remaining == 0;
            if !frame.opcode.is_control() {
                self.check_text()?;
            }
            if !done {
                return Ok(None);
            }
            if let Some(frame) = self.frame.take() {
                if let Some(message) = self.finish_frame(frame)? {
                    return Ok(Some((message, pos)));
                }
            }
        }
    }

    /// Take frame-head bytes from `input`; returns how many. Leaves
    /// `self.frame` set once the head is complete and valid.
    ///
    /// The head is judged in stages as it arrives (first two bytes, then
    /// the extended length, then the mask key) so that a bad frame or an
    /// oversized length fails without waiting for the bytes after it.
    fn read_head(&mut self, input: &[u8]) -> Result<usize, Failure> {
        let mut taken = 0;
        loop {
            let need = if self.head_len < 2 {
                2
            } else {
                let len_end = 2 + extended_len(self.head[1]);
                if self.head_len < len_end {
                    len_end
                } else {
                    len_end + 4
                }
            };
            let n = (need - self.head_len).min(input.len() - taken);
            self.head[self.head_len..self.head_len + n].copy_from_slice(&input[taken..taken + n]);
            self.head_len += n;
            taken += n;
            if self.head_len < need {
                return Ok(taken);
            }
            let len_end = 2 + extended_len(self.head[1]);
            if need == 2 {
                self.check_start()?;
            }
            if need == len_end {
                self.check_length()?;
            }
            if need == len_end + 4 {
                self.start_frame()?;
                return Ok(taken);
            }
        }
    }

    fn check_start(&self) -> Result<(), Failure> {
        let (b0, b1) = (self.head[0], self.head[1]);
        let opcode = Opcode::from_bits(b0 & 0x0f).ok_or_else(|| protocol("unknown opcode"))?;
        // RSV1 says "compressed" on a message's first frame, and only when
        // permessage-deflate was agreed.
        let compressed_start = b0 & 0x70 == 0x40
            && self.inflater.is_some()
            && matches!(opcode, Opcode::Text | Opcode::Binary);
        if b0 & 0x70 != 0 && !compressed_start {
            return Err(protocol("reserved bits set, no extension negotiated"));
        }
        if b1 & 0x80 == 0 {
            return Err(protocol("client frame not masked"));
        }
        let fin = b0 & 0x80 != 0;
        if opcode.is_control() {
            if !fin {
                return Err(protocol("fragmented control frame"));
            }
            if usize::from(b1 & 0x7f) > MAX_CONTROL_PAYLOAD {
                return Err(protocol("control frame longer than 125 bytes"));
            }
        } else {
            match (opcode, self.message.is_some()) {
                (Opcode::Continuation, false) => {
                    return Err(protocol("continuation frame without a message"))
                }
                (Opcode::Text | Opcode::Binary, true) => {
                    return Err(protocol("new message before the last one finished"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The payload length the head declares; the head is complete up to
    /// the end of the length.
    fn declared_len(&self) -> u64 {
        let h = &self.head;
        match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => {
                let mut be = [0; 8];
                be.copy_from_slice(&h[2..10]);
                u64::from_be_bytes(be)
            }
            n => u64::from(n),
        }
    }

    /// Enforce the length rules once the length is known and before any
    /// payload is kept. Control frame lengths were bounded by
    /// [`Decoder::check_start`]; the size limit is for data messages.
    fn check_length(&self) -> Result<(), Failure> {
        let len = self.declared_len();
        if len >> 63 != 0 {
            return Err(protocol("64-bit frame length with the top bit set"));
        }
        if self.head[0] & 0x08 == 0 {
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len());
            let limit = match self.max_message {
                0 => usize::MAX,
                max => max,
            };
            if (so_far as u64).saturating_add(len) > limit as u64 {
                return Err(Failure {
                    code: CLOSE_TOO_BIG,
                    reason: "message too big",
                });
            }
        }
        Ok(())
    }

    /// The head is complete and passed both checks: set up the payload's
    /// destination.
    fn start_frame(&mut self) -> Result<(), Failure> {
        let len = self.declared_len();
        let mask_at = 2 + extended_len(self.head[1]);
        let mut mask = [0; 4];
        mask.copy_from_slice(&self.head[mask_at..mask_at + 4]);
        let fin = self.head[0] & 0x80 != 0;
        let Some(opcode) = Opcode::from_bits(self.head[0] & 0x0f) else {
            return Err(protocol("unknown opcode"));
        };
        self.head_len = 0;
        if opcode.is_control() {
            self.control.clear();
        } else {
            let compressed = self.head[0] & 0x40 != 0;
            let partial = self.message.get_or_insert_with(|| Partial {
                text: opcode == Opcode::Text,
                compressed,
                data: Vec::new(),
                checked: 0,
            });
            partial
                .data
                .reserve(usize::try_from(len).map_or(RESERVE_CAP, |n| n.min(RESERVE_CAP)));
        }
        self.frame = Some(Frame {
            opcode,
            fin,
            mask,
            remaining: len,
            phase: 0,
        });
        Ok(())
    }

    /// Fail as soon as a text message holds a byte that no continuation can
    /// make valid UTF-8. Only the unchecked tail is examined, so the work
    /// stays linear however the bytes are split.
    fn check_text(&mut self) -> Result<(), Failure> {
        // A compressed message is checked once inflated.
        let Some(partial) = self.message.as_mut().filter(|p| p.text && !p.compressed) else {
            return Ok(());
        };
        match std::str::from_utf8(&partial.data[partial.checked..]) {
            Ok(_) => partial.checked = partial.data.len(),
            Err(e) if e.error_len().is_none() => partial.checked += e.valid_up_to(),
            Err(_) => return Err(invalid_text()),
        }
        Ok(())
    }

    fn finish_frame(&mut self, frame: Frame) -> Result<Option<Message>, Failure> {
        let mut payload = || std::mem::take(&mut self.control);
        Ok(Some(match frame.opcode {
            Opcode::Ping => Message::Ping(payload()),
            Opcode::Pong => Message::Pong(payload()),
            Opcode::Close => parse_close(&payload())?,
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                if !frame.fin {
                    return Ok(None);
                }
                let Some(mut partial) = self.message.take() else {
                    return Err(protocol("continuation frame without a message"));
                };
                if partial.compressed {
                    let inflater = self.inflater.as_mut().ok_or_else(|| protocol("RSV1"))?;
                    partial.data = inflater.inflate(&partial.data, self.max_message)?;
                    partial.checked = 0;
                }
                if !partial.text {
                    Message::Binary(partial.data)
                } else if !partial.compressed && partial.checked != partial.data.len() {
                    return Err(invalid_text());
                } else {
                    Message::Text(String::from_utf8(partial.data).map_err(|_| invalid_text())?)
                }
            }
        }))
    }
}

fn invalid_text() -> Failure {
    Failure {
        code: CLOSE_INVALID_PAYLOAD,
        reason: "text message is not valid UTF-8",
    }
}

/// RFC 6455 §5.5.1: empty, or a 2-byte code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Message, Failure> {
    match payload {
        [] => Ok(Message::Close(None)),
        [_] => Err(protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Failure {
                code: CLOSE_INVALID_PAYLOAD,
                reason: "close reason is not valid UTF-8",
            })?;
            Ok(Message::Close(Some((code, reason.to_owned()))))
        }
    }
}

/// Append one server frame: FIN set, unmasked (RFC 6455 §5.1: servers never
/// mask), length in the shortest of the 7-, 16- and 64-bit forms. Control
/// payloads must be at most [`MAX_CONTROL_PAYLOAD`] bytes; [`close_payload`]
/// guarantees it for close. With [`Opcode::Continuation`] the frame ends a
/// fragmented message the caller started by hand.
pub fn encode(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    encode_frame(out, 0x80 | opcode.bits(), payload);
}

/// The client's version of one unmasked frame (as [`encode`] writes them):
/// mask bit set, `key` inserted after the length, payload XORed with it.
/// corral never sends it; the unit tests and the `websocket` fuzz target
/// build client input with it.
pub fn masked(frame: &[u8], key: [u8; 4]) -> Vec<u8> {
    let head = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let mut out = frame[..head].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    out.extend(
        frame[head..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4]),
    );
    out
}

/// As [`encode`], for a data message compressed with permessage-deflate
/// (`payload` is [`super::deflate::Deflater::compress`]'s output): RSV1 set.
pub fn encode_compressed(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    debug_assert!(matches!(opcode, Opcode::Text | Opcode::Binary));
    encode_frame(out, 0xc0 | opcode.bits(), payload);
}

fn encode_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    debug_assert!(
        !Opcode::from_bits(b0 & 0x0f).is_some_and(Opcode::is_control)
            || payload.len() <= MAX_CONTROL_PAYLOAD
    );
    out.reserve(payload.len() + 10);
    out.push(b0);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// A close frame payload: `code` (which should satisfy
/// [`valid_close_code`]) and as much of `reason` as fits in 125 bytes,
/// cut on a character boundary so the reason stays UTF-8.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    payload
}

// ---------------------------------------------------------------------------
// SHA-1 (FIPS 180-4) and base64 (RFC 4648 §4), just enough for the handshake

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_len.to_be_bytes());

    let mut w = [0u32; 80];
    for block in padded.chunks_exact(64) {
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 0x3f]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict decoding: padded to a multiple of 4, `=` only at the end, and the
/// unused bits of the last character zero, so each byte string has exactly
/// one accepted spelling.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 != 0 {
        return None;
    }
    let pad = text.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let digits = &text[..text.len() - pad];
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in digits {
        let v = BASE64.iter().position(|&d| d == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, BodyKind, Header, Limits, Parsed};

    // -- SHA-1, base64, accept key ------------------------------------------

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha1_padding_boundaries() {
        // Lengths around the 55/56/64-byte padding edges, checked against
        // Python's hashlib over bytes i % 251.
        let cases: &[(usize, &str)] = &[
            (55, "8ae2d46729cfe68ff927af5eec9c7d1b66d65ac2"),
            (56, "636e2ec698dac903498e648bd2f3af641d3c88cb"),
            (63, "6d942da0c4392b123528f2905c713a3ce28364bd"),
            (64, "c6138d514ffa2135bfce0ed0b8fac65669917ec7"),
            (65, "69bd728ad6e13cd76ff19751fde427b00e395746"),
            (119, "41c89d06001bab4ab78736b44efe7ce18ce6ae08"),
            (120, "d3dbd653bd8597b7475321b60a36891278e6a04a"),
            (128, "e6434bc401f98603d7eda504790c98c67385d535"),
        ];
        for &(n, want) in cases {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            assert_eq!(hex(&sha1(&data)), want, "length {n}");
        }
    }

    #[test]
    fn base64_rfc4648_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for &(raw, text) in cases {
            assert_eq!(base64_encode(raw), text);
            assert_eq!(base64_decode(text.as_bytes()).as_deref(), Some(raw));
        }
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..70usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_encode(&data);
            assert_eq!(text.len(), n.div_ceil(3) * 4);
            assert_eq!(base64_decode(text.as_bytes()), Some(data));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(base64_encode(&all).as_bytes()), Some(all));
    }

    #[test]
    fn base64_decode_is_strict() {
        for bad in [
            &b"Zg="[..],
            b"Zg",
            b"Z===",
            b"Zh==",
            b"Zm9=",
            b"Zg==Zg==",
            b"Zm 9v",
            b"Zm-v",
            b"Zm_v",
            b"====",
        ] {
            assert_eq!(
                base64_decode(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn accept_key_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    // -- handshake ----------------------------------------------------------

    fn head(method: &str, version: Version, headers: &[(&str, &[u8])]) -> RequestHead {
        RequestHead {
            method: method.to_owned().into(),
            target: "/chat".to_owned(),
            path: "/chat".to_owned(),
            query: String::new(),
            version,
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: (*n).to_owned(),
                    value: v.to_vec(),
                })
                .collect(),
            body: BodyKind::None,
            keep_alive: true,
            expect_continue: false,
        }
    }

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    type Fields = Vec<(&'static str, &'static [u8])>;

    /// A valid upgrade's fields with `name` replaced by `value` (or left
    /// out when `value` is `None`).
    fn with(name: &'static str, value: Option<&'static [u8]>) -> Fields {
        let base: [(&'static str, &'static [u8]); 5] = [
            ("Host", b"server.example.com"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", b"13"),
        ];
        let mut out: Vec<_> = base
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect();
        if let Some(v) = value {
            let name = base
                .iter()
                .map(|(n, _)| *n)
                .find(|n| n.eq_ignore_ascii_case(name))
                .unwrap_or(name);
            out.push((name, v));
        }
        out
    }

    fn upgrade(headers: &[(&str, &[u8])]) -> Option<Result<Upgrade, UpgradeError>> {
        upgrade_request(&head("GET", Version::Http11, headers))
    }

    #[test]
    fn rfc6455_opening_handshake_parses_and_upgrades() {
        let raw = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
        let Ok(Parsed::Complete(h, _)) = parse_head(raw, &Limits::default()) else {
            panic!("the RFC's request must parse");
        };
        let up = upgrade_request(&h).unwrap().unwrap();
        assert_eq!(up.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(up.subprotocols, ["chat", "superchat"]);
        assert!(up.extensions.is_empty());
    }

    #[test]
    fn not_an_upgrade_is_none() {
        assert_eq!(upgrade(&[("Host", b"a")]), None);
        assert_eq!(upgrade(&with("upgrade", Some(b"h2c"))), None);
        assert_eq!(upgrade(&with("upgrade", Some(b"websocket2, x"))), None);
        // Even a broken request is none of our business without the token.
        assert_eq!(
            upgrade_request(&head(
                "POST",
                Version::Http10,
                &[("Connection", b"upgrade")]
            )),
            None
        );
    }

    #[test]
    fn upgrade_tokens_are_lists_and_case_insensitive() {
        let mut h = with("upgrade", Some(b"h2c, WebSocket"));
        h.retain(|(n, _)| *n != "Connection");
        h.push(("connection", b"keep-alive"));
        h.push(("CONNECTION", b" , UPGRADE "));
        h.push(("Sec-WebSocket-Protocol", b"chat"));
        h.push(("sec-websocket-protocol", b" v2.json ,, mqtt"));
        h.push((
            "Sec-WebSocket-Extensions",
            b"permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
        ));
        let up = upgrade(&h).unwrap().unwrap();
        assert_eq!(up.key.as_bytes(), KEY);
        assert_eq!(up.subprotocols, ["chat", "v2.json", "mqtt"]);
        assert_eq!(
            up.extensions,
            [
                "permessage-deflate; client_max_window_bits",
                "x-webkit-deflate-frame"
            ]
        );
    }

    fn refused(headers: &[(&str, &[u8])]) -> UpgradeError {
        match upgrade(headers) {
            Some(Err(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn malformed_upgrades_are_400() {
        let valid = with("", None);
        assert!(matches!(upgrade(&valid), Some(Ok(_))));
        let e = upgrade_request(&head("POST", Version::Http11, &valid));
        assert_eq!(e, Some(Err(UpgradeError::Method("POST".into()))));
        let e = upgrade_request(&head("GET", Version::Http10, &valid));
        assert_eq!(e, Some(Err(UpgradeError::Http10)));

        let cases: Vec<(Fields, UpgradeError)> = vec![
            (with("connection", None), UpgradeError::ConnectionNotUpgrade),
            (
                with("connection", Some(b"keep-alive")),
                UpgradeError::ConnectionNotUpgrade,
            ),
            (
                with("connection", Some(b"upgraded")),
                UpgradeError::ConnectionNotUpgrade,
            ),
            (with("sec-websocket-key", None), UpgradeError::MissingKey),
            (
                with("sec-websocket-key", Some(b"")),
                UpgradeError::BadKey(String::new()),
            ),
            // 15 and 17 bytes, and a 16-byte key with non-zero spare bits.
            (
                with("sec-websocket-key", Some(b"AAAAAAAAAAAAAAAAAAAA")),
                UpgradeError::BadKey("AAAAAAAAAAAAAAAAAAAA".into()),
            ),
            (
                with("sec-websocket-key", Some(b"AAAAAAAAAAAAAAAAAAAAAAA=")),
                UpgradeError::BadKey("AAAAAAAAAAAAAAAAAAAAAAA=".into()),
            ),
            (
                with("sec-websocket-key", Some(b"dGhlIHNhbXBsZSBub25jZR==")),
                UpgradeError::BadKey("dGhlIHNhbXBsZSBub25jZR==".into()),
            ),
            (
                with("sec-websocket-key", Some(b"not base64 at all!!!!!==")),
                UpgradeError::BadKey("not base64 at all!!!!!==".into()),
            ),
            (
                with("sec-websocket-protocol", Some(b"chat, a b")),
                UpgradeError::BadSubprotocol("a b".into()),
            ),
            (
                with("sec-websocket-protocol", Some(b"chat, \"x\"")),
                UpgradeError::BadSubprotocol("\"x\"".into()),
            ),
            (
                with("sec-websocket-extensions", Some(b"foo\x01")),
                UpgradeError::BadExtensions("foo\u{1}".into()),
            ),
        ];
        for (headers, want) in cases {
            let got = refused(&headers);
            assert_eq!(got, want, "{headers:?}");
            assert_eq!(got.status(), 400);
        }

        let mut twice = with("", None);
        twice.push(("Sec-WebSocket-Key", KEY));
        assert_eq!(
            refused(&twice),
            UpgradeError::Duplicate("Sec-WebSocket-Key")
        );
        let mut twice = with("", None);
        twice.push(("sec-websocket-version", b"13"));
        let e = refused(&twice);
        assert_eq!(e, UpgradeError::Duplicate("Sec-WebSocket-Version"));
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn wrong_version_is_426_with_the_supported_version() {
        let e = refused(&with("sec-websocket-version", Some(b"8")));
        assert_eq!(e, UpgradeError::UnsupportedVersion("8".into()));
        assert_eq!(e.status(), 426);
        assert_eq!(
            refused(&with("sec-websocket-version", None)),
            UpgradeError::MissingVersion
        );
        assert_eq!(
            refused(&with("sec-websocket-version", Some(b"13, 8"))).status(),
            426
        );

        let r = String::from_utf8(e.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{r}");
        for field in [
            "\r\nSec-WebSocket-Version: 13\r\n",
            "\r\nUpgrade: websocket\r\n",
            "\r\nConnection: Upgrade, close\r\n",
            "\r\nServer: corral\r\n",
            "\r\nDate: ",
        ] {
            assert!(r.contains(field), "{field:?} missing from {r}");
        }
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.ends_with(&format!("\r\nContent-Length: {}", body.len())));
        assert_eq!(body.len(), e.body_len());

        let bad = UpgradeError::MissingKey;
        let r = String::from_utf8(bad.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        assert_eq!(r.split_once("\r\n\r\n").unwrap().1.len(), bad.body_len());
    }

    fn response_fields(raw: &[u8]) -> (u16, Vec<(String, Vec<u8>)>) {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut slots);
        match resp.parse(raw) {
            Ok(httparse::Status::Complete(n)) => assert_eq!(n, raw.len()),
            other => panic!("{other:?}: {}", String::from_utf8_lossy(raw)),
        }
        let fields = resp
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        (resp.code.unwrap(), fields)
    }

    #[test]
    fn handshake_response_fields() {
        let accept = accept_key("dGhlIHNhbXBsZSBub25jZQ==");
        let raw = handshake_response(&accept, Some("chat"), Some("permessage-deflate"), &[]);
        assert!(raw.starts_with(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n"
        ));
        let (code, fields) = response_fields(&raw);
        assert_eq!(code, 101);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Upgrade",
                "Connection",
                "Sec-WebSocket-Accept",
                "Sec-WebSocket-Protocol",
                "Sec-WebSocket-Extensions",
                "Server",
                "Date"
            ]
        );
        assert_eq!(fields[4].1, b"permessage-deflate");

        let raw = handshake_response(&accept, None, None, &[]);
        assert!(!String::from_utf8_lossy(&raw).contains("Sec-WebSocket-Protocol"));
        assert!(!String::from_utf8_lossy(&raw).contains("Sec-WebSocket-Extensions"));
        // A subprotocol that would break the head is left out.
        let raw = handshake_response(&accept, Some("a\r\nX: y"), None, &[]);
        assert!(!String::from_utf8_lossy(&raw).contains("Sec-WebSocket-Protocol"));
        assert_eq!(response_fields(&raw).1.len(), 5);
    }

    #[test]
    fn handshake_response_filters_app_fields() {
        let accept = accept_key("x3JJHMbDL1EzLkh9GBhXDw==");
        let app: Vec<(Vec<u8>, Vec<u8>)> = [
            (&b"Set-Cookie"[..], &b" a=1 "[..]),
            (b"upgrade", b"h2c"),
            (b"CONNECTION", b"close"),
            (b"Sec-WebSocket-Accept", b"forged"),
            (b"Sec-WebSocket-Protocol", b"other"),
            (b"Sec-WebSocket-Extensions", b"permessage-deflate"),
            (b"Content-Length", b"0"),
            (b"X-Inject", b"a\r\nEvil: 1"),
            (b"X-Lf", b"a\nb"),
            (b"X-Nul", b"a\0b"),
            (b"Bad Name", b"v"),
            (b"Bad\r\nName", b"v"),
            (b"", b"v"),
            (b"Server", b"app/1.0"),
            (b"X-Latin1", b"caf\xe9"),
        ]
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
        let raw = handshake_response(&accept, Some("chat"), None, &app);
        let (_, fields) = response_fields(&raw);
        let got: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .filter(|(n, _)| *n != "Date")
            .collect();
        assert_eq!(
            got,
            [
                ("Upgrade", &b"websocket"[..]),
                ("Connection", b"Upgrade"),
                ("Sec-WebSocket-Accept", b"HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
                ("Sec-WebSocket-Protocol", b"chat"),
                ("Set-Cookie", b"a=1"),
                ("Server", b"app/1.0"),
                ("X-Latin1", b"caf\xe9"),
            ]
        );
    }

    // -- frames -------------------------------------------------------------

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    use super::masked;

    /// A masked client frame built by hand: `b0` is FIN/RSV/opcode.
    fn client(b0: u8, payload: &[u8]) -> Vec<u8> {
        client_key(b0, payload, MASK)
    }

    fn client_key(b0: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, Opcode::Binary, payload);
        out[0] = b0;
        masked(&out, key)
    }

    /// Everything a caller would see, feeding `stream` in `chunks`-sized
    /// pieces and following [`Decoder::decode`]'s contract. Stops at the
    /// first failure.
    fn drive(
        max: usize,
        stream: &[u8],
        chunks: &mut dyn FnMut() -> usize,
    ) -> Vec<Result<Message, Failure>> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let n = chunks().clamp(1, stream.len() - at);
            let mut pending = &stream[at..at + n];
            at += n;
            loop {
                match d.decode(pending) {
                    Ok(Some((m, used))) => {
                        assert!(used > 0 && used <= pending.len());
                        out.push(Ok(m));
                        pending = &pending[used..];
                    }
                    Ok(None) => break,
                    Err(f) => {
                        out.push(Err(f.clone()));
                        assert_eq!(d.decode(b"\x81"), Err(f), "a failed decoder stays failed");
                        return out;
                    }
                }
            }
        }
        out
    }

    fn whole(max: usize, stream: &[u8]) -> Vec<Result<Message, Failure>> {
        drive(max, stream, &mut || usize::MAX)
    }

    /// `whole`, after checking that byte-by-byte and pseudo-random splits
    /// give the same result.
    fn all_splits(max: usize, stream: &[u8]) -> Vec<Result<Message, Failure>> {
        let reference = whole(max, stream);
        assert_eq!(drive(max, stream, &mut || 1), reference, "byte by byte");
        let mut x = 0x9e37_79b9_u32;
        let mut random = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 23) as usize + 1
        };
        assert_eq!(drive(max, stream, &mut random), reference, "random splits");
        reference
    }

    fn fails(max: usize, stream: &[u8]) -> Failure {
        match all_splits(max, stream).pop() {
            Some(Err(f)) => f,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn rfc6455_single_frame_unmasked_text_is_refused() {
        let f = fails(0, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(f.code, CLOSE_PROTOCOL_ERROR);
        // Refused on the second byte, before the payload arrives.
        assert_eq!(Decoder::new(0).decode(&[0x81, 0x05]), Err(f));
    }

    #[test]
    fn rfc6455_masked_text() {
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut d = Decoder::new(0);
        let mut buf = frame.to_vec();
        buf.extend_from_slice(b"trailing");
        assert_eq!(
            d.decode(&buf),
            Ok(Some((Message::Text("Hello".into()), frame.len())))
        );
        assert_eq!(all_splits(0, &frame), [Ok(Message::Text("Hello".into()))]);
        // The example frame is exactly what encode + masking produce.
        let mut out = Vec::new();
        encode(&mut out, Opcode::Text, b"Hello");
        assert_eq!(masked(&out, MASK), frame);
    }

    #[test]
    fn rfc6455_fragmented_text_with_a_ping_between() {
        let mut stream = masked(&[0x01, 0x03, 0x48, 0x65, 0x6c], MASK);
        stream.extend(masked(
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            [1, 2, 3, 4],
        ));
        stream.extend(masked(&[0x80, 0x02, 0x6c, 0x6f], [9, 8, 7, 6]));
        stream.extend(masked(
            &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            [0, 0, 0, 0],
        ));
        assert_eq!(
            all_splits(0, &stream),
            [
                Ok(Message::Ping(b"Hello".to_vec())),
                Ok(Message::Text("Hello".into())),
                Ok(Message::Pong(b"Hello".to_vec())),
            ]
        );
    }

    #[test]
    fn fragments_are_kept_by_the_decoder() {
        let first = masked(&[0x01, 0x03, 0x48, 0x65, 0x6c], MASK);
        let last = masked(&[0x80, 0x02, 0x6c, 0x6f], MASK);
        let mut d = Decoder::new(0);
        // The first fragment is taken whole: the caller drops it.
        assert_eq!(d.decode(&first), Ok(None));
        assert_eq!(
            d.decode(&last),
            Ok(Some((Message::Text("Hello".into()), last.len())))
        );
        assert_eq!(d.decode(&[]), Ok(None));
    }

    #[test]
    fn rfc6455_length_forms() {
        let payload_256: Vec<u8> = (0..256).map(|i| i as u8).collect();
        let mut out = Vec::new();
        encode(&mut out, Opcode::Binary, &payload_256);
        assert_eq!(out[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
        assert_eq!(
            all_splits(0, &masked(&out, MASK)),
            [Ok(Message::Binary(payload_256))]
        );

        let payload_64k: Vec<u8> = (0..65536).map(|i| (i * 7 % 256) as u8).collect();
        let mut out = Vec::new();
        encode(&mut out, Opcode::Binary, &payload_64k);
        assert_eq!(
            out[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(out.len(), 10 + 65536);
        let client_frame = masked(&out, MASK);
        assert_eq!(
            whole(0, &client_frame),
            [Ok(Message::Binary(payload_64k.clone()))]
        );
        assert_eq!(
            drive(0, &client_frame, &mut || 1),
            [Ok(Message::Binary(payload_64k))]
        );
    }

    #[test]
    fn encode_decode_round_trip_at_each_length_boundary() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            // Exactly `len` bytes, with two-byte characters in it.
            let text = "é-ab".repeat(len / 5) + &"x".repeat(len % 5);
            let mut out = Vec::new();
            encode(&mut out, Opcode::Text, text.as_bytes());
            let header = match text.len() {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            };
            assert_eq!(out.len(), header + text.len(), "length {len}");
            assert_eq!(out[0], 0x81);
            let mut d = Decoder::new(0);
            let frame = masked(&out, [0xde, 0xad, 0xbe, 0xef]);
            assert_eq!(
                d.decode(&frame),
                Ok(Some((Message::Text(text), frame.len())))
            );
        }
        for (op, want) in [
            (Opcode::Ping, Message::Ping(b"p".to_vec())),
            (Opcode::Pong, Message::Pong(b"p".to_vec())),
        ] {
            let mut out = Vec::new();
            encode(&mut out, op, b"p");
            let frame = masked(&out, MASK);
            assert_eq!(whole(0, &frame), [Ok(want)]);
        }
        let mut out = Vec::new();
        encode(&mut out, Opcode::Close, &close_payload(1000, "bye"));
        assert_eq!(out, b"\x88\x05\x03\xe8bye");
        assert_eq!(
            whole(0, &masked(&out, MASK)),
            [Ok(Message::Close(Some((1000, "bye".into()))))]
        );
    }

    #[test]
    fn long_stream_same_however_split() {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..40usize {
            let key = [i as u8, 0x55, 0xaa, 3];
            let body: Vec<u8> = (0..i * 37).map(|j| (i + j) as u8).collect();
            if i % 3 == 0 {
                // Three fragments that split characters, a ping inside.
                let text: String = "ü€x".chars().cycle().take(i * 5).collect();
                let bytes = text.as_bytes();
                let (a, rest) = bytes.split_at(bytes.len() / 3);
                let (b, c) = rest.split_at(rest.len() / 2);
                let ping = &body[..body.len().min(125)];
                stream.extend(client_key(0x01, a, key));
                stream.extend(client_key(0x00, b, MASK));
                stream.extend(client_key(0x89, ping, key));
                stream.extend(client_key(0x80, c, [7, 7, 7, i as u8]));
                expected.push(Ok(Message::Ping(ping.to_vec())));
                expected.push(Ok(Message::Text(text)));
            } else {
                let mut out = Vec::new();
                encode(&mut out, Opcode::Binary, &body);
                stream.extend(masked(&out, key));
                expected.push(Ok(Message::Binary(body)));
            }
        }
        let mut close = Vec::new();
        encode(&mut close, Opcode::Close, &close_payload(4000, "done"));
        stream.extend(masked(&close, MASK));
        expected.push(Ok(Message::Close(Some((4000, "done".into())))));
        assert_eq!(all_splits(0, &stream), expected);
    }

    #[test]
    fn compressed_messages_are_inflated_only_when_agreed() {
        use crate::http::deflate::Agreement;
        let agreed = || {
            Decoder::new(0).with_inflater(
                Agreement::negotiate(&["permessage-deflate"])
                    .unwrap()
                    .inflater(),
            )
        };
        // RFC 7692 §7.2.3.1's "Hello", in one frame, then split in two
        // frames with RSV1 on the first only (§7.2.3.1's second example).
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let one = client(0xc1, &hello);
        let mut d = agreed();
        assert_eq!(
            d.decode(&one).unwrap().unwrap().0,
            Message::Text("Hello".into())
        );
        let mut two = client(0x41, &hello[..3]);
        two.extend(client(0x80, &hello[3..]));
        let mut d = agreed();
        let (m, n) = d.decode(&two).unwrap().unwrap();
        assert_eq!((m, n), (Message::Text("Hello".into()), two.len()));
        // Not agreed: RSV1 is a protocol error, as before.
        assert_eq!(
            Decoder::new(0).decode(&one).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR
        );
        // RSV1 on a continuation or a control frame, or RSV2: errors.
        let mut bad = client(0x01, b"He");
        bad.extend(client(0xc0, b"llo"));
        assert_eq!(
            agreed().decode(&bad).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            agreed().decode(&client(0xc9, b"")).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            agreed().decode(&client(0xe1, &hello)).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR
        );
        // Inflated text is checked as UTF-8; the size limit is on what it
        // inflates to.
        let a = Agreement::negotiate(&["permessage-deflate"]).unwrap();
        let latin = a.deflater().compress(&[0xe9; 10]);
        assert_eq!(
            agreed().decode(&client(0xc1, &latin)).unwrap_err().code,
            CLOSE_INVALID_PAYLOAD
        );
        let zeros = a.deflater().compress(&[0; 5000]);
        let mut small = Decoder::new(4096).with_inflater(a.inflater());
        assert_eq!(
            small.decode(&client(0xc2, &zeros)).unwrap_err().code,
            CLOSE_TOO_BIG
        );
        let mut d = agreed();
        assert_eq!(
            d.decode(&client(0xc2, &zeros)).unwrap().unwrap().0,
            Message::Binary(vec![0; 5000])
        );
        // An uncompressed message between compressed ones is fine too.
        assert_eq!(
            d.decode(&client(0x81, b"plain")).unwrap().unwrap().0,
            Message::Text("plain".into())
        );
    }

    #[test]
    fn framing_failures_are_protocol_errors() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("rsv1", client(0xc1, b"x")),
            ("rsv2", client(0xa1, b"x")),
            ("rsv3", client(0x91, b"x")),
            ("fragmented ping", client(0x09, b"x")),
            ("fragmented close", client(0x08, b"")),
            ("long ping", client(0x89, &[0; 126])),
            ("long pong", client(0x8a, &[0; 200])),
            ("lone continuation", client(0x80, b"x")),
            ("lone unfinished continuation", client(0x00, b"x")),
            (
                "text inside text",
                [client(0x01, b"a"), client(0x81, b"b")].concat(),
            ),
            (
                "binary inside text",
                [client(0x01, b"a"), client(0x02, b"b")].concat(),
            ),
            (
                "text inside binary",
                [client(0x02, b"a"), client(0x81, b"b")].concat(),
            ),
            (
                "continuation after the end",
                [client(0x01, b"a"), client(0x80, b"b"), client(0x80, b"c")].concat(),
            ),
            ("close of one byte", client(0x88, b"\x03")),
            (
                "top bit of the 64-bit length",
                vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            ),
        ];
        for op in (0x3..=0x7).chain(0xb..=0xf) {
            let f = fails(0, &client(0x80 | op, b"x"));
            assert_eq!(f.code, CLOSE_PROTOCOL_ERROR, "opcode {op:#x}");
            assert_eq!(f.reason, "unknown opcode");
        }
        for (what, stream) in cases {
            let f = fails(0, &stream);
            assert_eq!(f.code, CLOSE_PROTOCOL_ERROR, "{what}: {f}");
        }
        // The messages before the bad frame still came out.
        let got = all_splits(0, &[client(0x81, b"ok"), client(0x80, b"x")].concat());
        assert_eq!(got[0], Ok(Message::Text("ok".into())));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn bad_heads_fail_before_their_payload() {
        for head in [
            &[0xc1, 0x81][..],
            &[0x83, 0x81],
            &[0x81, 0x01],
            &[0x09, 0x80],
            &[0x89, 0xfe],
            &[0x80, 0x81],
        ] {
            assert_eq!(
                Decoder::new(0).decode(head).map_err(|f| f.code),
                Err(CLOSE_PROTOCOL_ERROR),
                "{head:02x?}"
            );
        }
        let top_bit = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(Decoder::new(0).decode(&top_bit).is_err());
        // The same bytes without the top bit only need more.
        let mut ok = top_bit;
        ok[2] = 0x7f;
        assert_eq!(Decoder::new(0).decode(&ok), Ok(None));
    }

    #[test]
    fn invalid_utf8_is_1007() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("lone continuation byte", client(0x81, b"a\x80b")),
            ("0xff", client(0x81, b"\xff")),
            ("overlong", client(0x81, b"\xc0\xaf")),
            ("surrogate", client(0x81, b"\xed\xa0\x80")),
            ("above U+10FFFF", client(0x81, b"\xf4\x90\x80\x80")),
            ("truncated at the end", client(0x81, b"ok\xe2\x82")),
            (
                "truncated across the last fragment",
                [client(0x01, b"\xe2\x82"), client(0x80, b"")].concat(),
            ),
            (
                "bad in a later fragment",
                [client(0x01, b"\xe2\x82"), client(0x80, b"x")].concat(),
            ),
            ("close reason", client(0x88, b"\x03\xe8\xff")),
        ];
        for (what, stream) in cases {
            let f = fails(0, &stream);
            assert_eq!(f.code, CLOSE_INVALID_PAYLOAD, "{what}: {f}");
        }
        // A character split across fragments is fine.
        let split = [
            client(0x01, b"\xe2"),
            client(0x00, b"\x82"),
            client(0x80, b"\xac!"),
        ]
        .concat();
        assert_eq!(all_splits(0, &split), [Ok(Message::Text("€!".into()))]);
    }

    #[test]
    fn invalid_utf8_fails_before_the_message_ends() {
        // Header of a 100-byte unfinished text frame, then one bad byte.
        let frame = client(0x01, &[b'a'; 100]);
        let mut d = Decoder::new(0);
        assert_eq!(d.decode(&frame[..6]), Ok(None));
        assert_eq!(d.decode(&frame[6..16]), Ok(None));
        // Payload byte 10, masked so that it arrives as 0xff.
        let bad_byte = [0xff ^ MASK[10 % 4]];
        assert_eq!(
            d.decode(&bad_byte).map_err(|f| f.code),
            Err(CLOSE_INVALID_PAYLOAD)
        );
    }

    #[test]
    fn close_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            let frame = client(0x88, &close_payload(code, "r"));
            assert_eq!(
                all_splits(0, &frame),
                [Ok(Message::Close(Some((code, "r".into()))))],
                "{code}"
            );
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let f = fails(0, &client(0x88, &close_payload(code, "")));
            assert_eq!(f.code, CLOSE_PROTOCOL_ERROR, "{code}");
        }
        assert_eq!(
            all_splits(0, &client(0x88, b"")),
            [Ok(Message::Close(None))]
        );
    }

    #[test]
    fn close_payload_truncates_on_a_char_boundary() {
        assert_eq!(close_payload(1000, ""), [0x03, 0xe8]);
        let long = "é".repeat(100); // 200 bytes
        let p = close_payload(1001, &long);
        assert!(p.len() <= MAX_CONTROL_PAYLOAD);
        assert_eq!(p.len(), 2 + 122);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        let ascii = "x".repeat(200);
        assert_eq!(close_payload(1001, &ascii).len(), MAX_CONTROL_PAYLOAD);
        // Exactly 123 bytes of reason fit unchanged.
        let exact = format!("{}€", "x".repeat(120));
        assert_eq!(close_payload(1000, &exact)[2..], *exact.as_bytes());
    }

    #[test]
    fn max_message_from_the_declared_length() {
        let big = |code| {
            Err::<Message, _>(Failure {
                code,
                reason: "message too big",
            })
        };
        // A 64 KiB frame against a 1000-byte limit fails on its length
        // alone, before the mask key.
        let mut out = Vec::new();
        encode(&mut out, Opcode::Binary, &[0; 65536]);
        let frame = masked(&out, MASK);
        let mut d = Decoder::new(1000);
        assert_eq!(d.decode(&frame[..9]), Ok(None));
        assert_eq!(
            d.decode(&frame[9..10]).map_err(|f| f.code),
            Err(CLOSE_TOO_BIG)
        );
        // Even a lie about a huge length costs nothing.
        let lie = [
            0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ];
        assert_eq!(
            Decoder::new(1 << 20).decode(&lie).map_err(|f| f.code),
            Err(CLOSE_TOO_BIG)
        );
        assert_eq!(Decoder::new(0).decode(&lie), Ok(None));

        // At the limit passes; one byte over fails, single frame or summed
        // over fragments.
        assert_eq!(
            all_splits(10, &client(0x82, &[1; 10])),
            [Ok(Message::Binary(vec![1; 10]))]
        );
        assert_eq!(
            all_splits(10, &client(0x82, &[1; 11])),
            [big(CLOSE_TOO_BIG)]
        );
        let frags = [
            client(0x01, b"abcd"),
            client(0x00, b"efg"),
            client(0x80, b"hij"),
        ]
        .concat();
        assert_eq!(
            all_splits(10, &frags),
            [Ok(Message::Text("abcdefghij".into()))]
        );
        let frags = [
            client(0x01, b"abcd"),
            client(0x00, b"efg"),
            client(0x80, b"hijk"),
        ]
        .concat();
        assert_eq!(all_splits(10, &frags), [big(CLOSE_TOO_BIG)]);
        // The failure comes with the head of the frame that crosses the limit.
        let mut d = Decoder::new(10);
        let first = client(0x01, b"abcdefgh");
        assert_eq!(d.decode(&first), Ok(None));
        let second = client(0x80, b"ijk");
        assert_eq!(
            d.decode(&second[..2]).map_err(|f| f.code),
            Err(CLOSE_TOO_BIG)
        );
        // Control frames are not counted against a data message.
        let ping = [
            client(0x01, b"abcdefgh"),
            client(0x89, &[0; 125]),
            client(0x80, b"ij"),
        ]
        .concat();
        assert_eq!(
            all_splits(10, &ping),
            [
                Ok(Message::Ping(vec![0; 125])),
                Ok(Message::Text("abcdefghij".into()))
            ]
        );
    }

    #[test]
    fn empty_frames() {
        let stream = [
            client(0x81, b""),
            client(0x82, b""),
            client(0x01, b""),
            client(0x00, b""),
            client(0x89, b""),
            client(0x80, b""),
        ]
        .concat();
        assert_eq!(
            all_splits(0, &stream),
            [
                Ok(Message::Text(String::new())),
                Ok(Message::Binary(Vec::new())),
                Ok(Message::Ping(Vec::new())),
                Ok(Message::Text(String::new())),
            ]
        );
    }
}
