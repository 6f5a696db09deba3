//! The benchmark's WebSocket load generator (wrk cannot do WebSockets). std only,
//! built by contrib/bench/run with plain `rustc -O`.
//!
//! Usage: wsbench HOST:PORT [-c CONNS] [-d SECONDS] [-p PATH] [-s PAYLOAD_BYTES]
//!
//! One thread per connection. Each connection does the RFC 6455 opening handshake
//! (checks the 101 and Sec-WebSocket-Accept), then, for the duration, sends one
//! masked text frame and waits for its echo before sending the next (one message in
//! flight per connection). Every echo is checked: a single unmasked text message with
//! exactly the payload sent (each payload carries the connection and a sequence
//! number). A failed handshake, a wrong echo, an I/O error or a 2 s timeout counts as
//! an error, and the connection is replaced. Server pings are answered with pongs.
//! At the end each connection sends a close frame (code 1000) and waits up to 1 s for
//! the server's.
//!
//! Prints one line of key=value pairs for contrib/bench/bench.py:
//!   wsbench conns=50 seconds=5.001 roundtrips=123456 rps=24686.1 p50_ms=1.950
//!     p90_ms=... p99_ms=3.120 max_ms=... errors=0 handshake=0 mismatch=0 io=0
//!     timeout=0 reconnects=0
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// SHA-1 and base64, for the handshake's key and its check.

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for i in 0..5 {
        out[4 * i..4 * i + 4].copy_from_slice(&h[i].to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

enum Fail {
    Handshake(String),
    Mismatch(String),
    Io(String),
    Timeout,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Fail::Handshake(s) => write!(f, "handshake: {s}"),
            Fail::Mismatch(s) => write!(f, "wrong echo: {s}"),
            Fail::Io(s) => write!(f, "i/o: {s}"),
            Fail::Timeout => write!(f, "no answer in {} s", TIMEOUT.as_secs()),
        }
    }
}

fn io_fail(e: std::io::Error) -> Fail {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Fail::Timeout,
        _ => Fail::Io(e.to_string()),
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    have: usize,
}

impl Conn {
    fn open(addr: &SocketAddr, host: &str, path: &str, rng: &mut Rng) -> Result<Conn, Fail> {
        let s = TcpStream::connect_timeout(addr, TIMEOUT).map_err(io_fail)?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(TIMEOUT)).map_err(io_fail)?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(io_fail)?;
        let mut c = Conn { s, buf: vec![0u8; 16384], have: 0 };
        let mut key = [0u8; 16];
        for b in key.iter_mut() {
            *b = rng.next() as u8;
        }
        let key = base64(&key);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.s.write_all(req.as_bytes()).map_err(io_fail)?;
        // the response head; anything after it stays in the buffer (a first frame)
        let end = loop {
            if let Some(p) = c.buf[..c.have].windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if c.have == c.buf.len() {
                return Err(Fail::Handshake("response head too large".into()));
            }
            match c.s.read(&mut c.buf[c.have..]) {
                Ok(0) => return Err(Fail::Handshake("closed during the handshake".into())),
                Ok(n) => c.have += n,
                Err(e) => return Err(io_fail(e)),
            }
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("");
        if !status.starts_with("HTTP/1.1 101") {
            return Err(Fail::Handshake(format!("status line {status:?}")));
        }
        let want = base64(&sha1(format!("{key}{GUID}").as_bytes()));
        let accept = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, v)| v.trim().to_string());
        if accept.as_deref() != Some(want.as_str()) {
            return Err(Fail::Handshake(format!("Sec-WebSocket-Accept {accept:?}, want {want}")));
        }
        c.consume(end + 4);
        Ok(c)
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.have, 0);
        self.have -= n;
    }

    fn fill(&mut self, need: usize) -> Result<(), Fail> {
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        while self.have < need {
            match self.s.read(&mut self.buf[self.have..]) {
                Ok(0) => return Err(Fail::Io("connection closed by the server".into())),
                Ok(n) => self.have += n,
                Err(e) => return Err(io_fail(e)),
            }
        }
        Ok(())
    }

    /// Sends one masked frame (client frames must be masked).
    fn send(&mut self, opcode: u8, payload: &[u8], rng: &mut Rng) -> Result<(), Fail> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(0x80 | opcode);
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n < 65536 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = (rng.next() as u32).to_be_bytes();
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).map_err(io_fail)
    }

    /// Reads one frame: (fin, opcode, payload). Server frames must not be masked.
    fn frame(&mut self) -> Result<(bool, u8, Vec<u8>), Fail> {
        self.fill(2)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        if b1 & 0x80 != 0 {
            return Err(Fail::Mismatch("masked frame from the server".into()));
        }
        if b0 & 0x70 != 0 {
            return Err(Fail::Mismatch("RSV bits set (no extension was negotiated)".into()));
        }
        let (len, hl) = match b1 & 0x7f {
            126 => {
                self.fill(4)?;
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                self.fill(10)?;
                let mut x = [0u8; 8];
                x.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(x) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if len > 1 << 24 {
            return Err(Fail::Mismatch(format!("frame of {len} bytes")));
        }
        self.fill(hl + len)?;
        let payload = self.buf[hl..hl + len].to_vec();
        self.consume(hl + len);
        Ok((b0 & 0x80 != 0, b0 & 0x0f, payload))
    }

    /// Reads one whole data message, answering pings on the way: (opcode, payload).
    fn message(&mut self, rng: &mut Rng) -> Result<(u8, Vec<u8>), Fail> {
        let mut msg: Option<(u8, Vec<u8>)> = None;
        loop {
            let (fin, op, payload) = self.frame()?;
            match op {
                0x9 => self.send(0xA, &payload, rng)?,
                0xA => {}
                0x8 => return Err(Fail::Io(format!("close frame from the server {payload:?}"))),
                0x1 | 0x2 if msg.is_none() => msg = Some((op, payload)),
                0x0 if msg.is_some() => msg.as_mut().unwrap().1.extend_from_slice(&payload),
                _ => return Err(Fail::Mismatch(format!("unexpected opcode {op:#x}"))),
            }
            if fin && op < 0x8 {
                return Ok(msg.unwrap());
            }
        }
    }

    fn close(mut self, rng: &mut Rng) {
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(1)));
        if self.send(0x8, &1000u16.to_be_bytes(), rng).is_err() {
            return;
        }
        for _ in 0..64 {
            match self.frame() {
                Ok((_, 0x8, _)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    lat_us: Vec<u32>,
    handshake: u64,
    mismatch: u64,
    io: u64,
    timeout: u64,
    reconnects: u64,
    first_error: Option<String>,
}

impl Stats {
    fn fail(&mut self, f: Fail) {
        if self.first_error.is_none() {
            self.first_error = Some(f.to_string());
        }
        match f {
            Fail::Handshake(_) => self.handshake += 1,
            Fail::Mismatch(_) => self.mismatch += 1,
            Fail::Io(_) => self.io += 1,
            Fail::Timeout => self.timeout += 1,
        }
    }
}

fn run_conn(id: usize, addr: SocketAddr, host: String, path: String, size: usize, secs: f64,
            start: Arc<Barrier>) -> Stats {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut rng = Rng(seed ^ ((id as u64 + 1) * 0x9E3779B97F4A7C15) | 1);
    let mut st = Stats::default();
    let mut conn = match Conn::open(&addr, &host, &path, &mut rng) {
        Ok(c) => Some(c),
        Err(f) => {
            st.fail(f);
            None
        }
    };
    start.wait();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut seq: u64 = 0;
    while Instant::now() < deadline {
        if conn.is_none() {
            // replace a failed connection (not in a tight loop if the server is gone)
            std::thread::sleep(Duration::from_millis(10));
            st.reconnects += 1;
            match Conn::open(&addr, &host, &path, &mut rng) {
                Ok(c) => conn = Some(c),
                Err(f) => {
                    st.fail(f);
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        seq += 1;
        let mut payload = format!("wsbench {:04} {:07}", id % 10000, seq % 10_000_000).into_bytes();
        payload.resize(size, b'.');
        let t0 = Instant::now();
        let r = c.send(0x1, &payload, &mut rng).and_then(|_| c.message(&mut rng)).and_then(|(op, got)| {
            if op != 0x1 {
                Err(Fail::Mismatch(format!("echo with opcode {op:#x}, sent a text frame")))
            } else if got != payload {
                Err(Fail::Mismatch(format!("echo {:?}, sent {:?}", String::from_utf8_lossy(&got),
                                           String::from_utf8_lossy(&payload))))
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => st.lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(f) => {
                st.fail(f);
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        c.close(&mut rng);
    }
    st
}

fn usage() -> ! {
    eprintln!("usage: wsbench HOST:PORT [-c CONNS] [-d SECONDS] [-p PATH] [-s PAYLOAD_BYTES]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        usage();
    }
    let target = args[0].clone();
    let (mut conns, mut secs, mut path, mut size) = (50usize, 5f64, "/".to_string(), 20usize);
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).unwrap_or_else(|| usage());
        match args[i].as_str() {
            "-c" => conns = v.parse().unwrap_or_else(|_| usage()),
            "-d" => secs = v.parse().unwrap_or_else(|_| usage()),
            "-p" => path = v.clone(),
            "-s" => size = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
        i += 2;
    }
    if conns == 0 || size < 20 {
        usage();
    }
    let addr = target.to_socket_addrs().ok().and_then(|mut a| a.next()).unwrap_or_else(|| usage());
    let start = Arc::new(Barrier::new(conns + 1));
    let handles: Vec<_> = (0..conns)
        .map(|id| {
            let (host, path, start) = (target.clone(), path.clone(), start.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || run_conn(id, addr, host, path, size, secs, start))
                .expect("thread")
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut all = Stats::default();
    for h in handles {
        let st = h.join().expect("connection thread panicked");
        all.lat_us.extend_from_slice(&st.lat_us);
        all.handshake += st.handshake;
        all.mismatch += st.mismatch;
        all.io += st.io;
        all.timeout += st.timeout;
        all.reconnects += st.reconnects;
        if all.first_error.is_none() {
            all.first_error = st.first_error;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    all.lat_us.sort_unstable();
    let n = all.lat_us.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let k = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
        all.lat_us[k] as f64 / 1000.0
    };
    let errors = all.handshake + all.mismatch + all.io + all.timeout;
    if let Some(e) = &all.first_error {
        eprintln!("wsbench: first error: {e}");
    }
    println!(
        "wsbench conns={conns} seconds={elapsed:.3} roundtrips={n} rps={:.1} p50_ms={:.3} p90_ms={:.3} \
         p99_ms={:.3} max_ms={:.3} errors={errors} handshake={} mismatch={} io={} timeout={} reconnects={}",
        n as f64 / elapsed.max(1e-9),
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        all.handshake,
        all.mismatch,
        all.io,
        all.timeout,
        all.reconnects
    );
}
