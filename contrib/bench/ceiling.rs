//! The benchmark's no-Python reference: a constant HTTP/1.1 response from a plain
//! thread-per-connection server (std only). It is NOT corral; it shows what the
//! load generator and this machine can do when no Python runs at all.
//!
//! Usage: ceiling PORT
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

const KEEP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";

fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16384];
    let mut have = 0;
    loop {
        // answer every complete request head in the buffer (bodies are not expected)
        while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let close = head.contains("connection: close");
            if s.write_all(if close { CLOSE } else { KEEP }).is_err() || close {
                return;
            }
            buf.copy_within(end + 4..have, 0);
            have -= end + 4;
        }
        if have == buf.len() {
            return;
        }
        match s.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).expect("PORT");
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for s in l.incoming().flatten() {
        std::thread::spawn(move || serve(s));
    }
}
