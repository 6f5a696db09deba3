//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer puts before the HTTP bytes of a connection to say whom the
//! connection is really from. Bytes in, the addresses out; whether the
//! peer may send one, and what is done with it, is the worker's.
//!
//! As gunicorn 27 reads it: the header is looked for at the start of a
//! connection only, it is optional (a connection that does not start with
//! one is plain HTTP), v1 is `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n`
//! (`PROXY UNKNOWN` is refused, as gunicorn does), and v2 is the binary
//! header with the LOCAL and PROXY commands over TCP (STREAM) for IPv4,
//! IPv6 or UNSPEC; its TLVs are skipped.

use std::net::{IpAddr, SocketAddr};

use super::HttpError;

/// `--proxy-protocol`: which versions are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    #[default]
    Off,
    V1,
    V2,
    Auto,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Off => "off",
            ProxyMode::V1 => "v1",
            ProxyMode::V2 => "v2",
            ProxyMode::Auto => "auto",
        }
    }
}

/// What a header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// `TCP4`, `TCP6`, or (v2) `LOCAL` / `UNSPEC`: the environ's
    /// `PROXY_PROTOCOL`.
    pub protocol: &'static str,
    /// The client's address (`REMOTE_ADDR`, `REMOTE_PORT`); `None` for
    /// LOCAL and UNSPEC, which say nothing about the client.
    pub client: Option<SocketAddr>,
    /// The address the client connected to on the proxy (`PROXY_ADDR`,
    /// `PROXY_PORT`).
    pub proxy: Option<SocketAddr>,
}

/// The outcome of looking at the first bytes of a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyParse {
    /// Not a PROXY header (in the versions accepted): plain HTTP.
    NotProxy,
    /// A header may be starting: more bytes are needed.
    Partial,
    /// A header of `len` bytes.
    Done(ProxyInfo, usize),
}

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 line is at most 107 bytes, CRLF included (the specification's
/// bound for `TCP6` with the longest addresses).
const V1_MAX: usize = 107;
/// The largest v2 header accepted: addresses and TLVs beyond this are a
/// broken or hostile peer (the format allows 64 KiB).
const V2_MAX: usize = 16 + 4096;

fn invalid(why: impl Into<String>) -> HttpError {
    HttpError::BadProxyHeader(why.into())
}

/// Look for a header at the start of `buf`.
pub fn parse_proxy(buf: &[u8], mode: ProxyMode) -> Result<ProxyParse, HttpError> {
    if mode == ProxyMode::Off || buf.is_empty() {
        return Ok(if buf.is_empty() && mode != ProxyMode::Off {
            ProxyParse::Partial
        } else {
            ProxyParse::NotProxy
        });
    }
    let v2 = matches!(mode, ProxyMode::V2 | ProxyMode::Auto);
    let v1 = matches!(mode, ProxyMode::V1 | ProxyMode::Auto);
    let n = buf.len().min(12);
    let maybe_v2 = v2 && buf[..n] == V2_SIGNATURE[..n];
    let m = buf.len().min(6);
    let maybe_v1 = v1 && buf[..m] == b"PROXY "[..m];
    if maybe_v2 {
        return if buf.len() < 12 {
            Ok(ProxyParse::Partial)
        } else {
            parse_v2(buf)
        };
    }
    if maybe_v1 {
        return if buf.len() < 6 {
            Ok(ProxyParse::Partial)
        } else {
            parse_v1(buf)
        };
    }
    Ok(ProxyParse::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<ProxyParse, HttpError> {
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(invalid("PROXY line longer than 107 bytes"))
        } else {
            Ok(ProxyParse::Partial)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| invalid("PROXY line is not text"))?;
    let bits: Vec<&str> = line.split(' ').collect();
    if bits.len() != 6 {
        return Err(invalid(format!("{line:?}")));
    }
    // TCP4 takes IPv4 addresses only, TCP6 IPv6 only.
    let v4 = match bits[1] {
        "TCP4" => true,
        "TCP6" => false,
        other => return Err(invalid(format!("protocol {other:?} not supported"))),
    };
    let addr = |a: &str| {
        a.parse::<IpAddr>()
            .ok()
            .filter(|ip| ip.is_ipv4() == v4)
            .ok_or_else(|| invalid(format!("{line:?}")))
    };
    let (client, proxy) = (addr(bits[2])?, addr(bits[3])?);
    let port = |p: &str| {
        // Decimal digits only: `+80` or `0x50` are not ports.
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("invalid port in {line:?}")));
        }
        p.parse::<u16>()
            .map_err(|_| invalid(format!("invalid port in {line:?}")))
    };
    let info = ProxyInfo {
        protocol: if client.is_ipv4() { "TCP4" } else { "TCP6" },
        client: Some(SocketAddr::new(client, port(bits[4])?)),
        proxy: Some(SocketAddr::new(proxy, port(bits[5])?)),
    };
    Ok(ProxyParse::Done(info, end + 2))
}

fn parse_v2(buf: &[u8]) -> Result<ProxyParse, HttpError> {
    if buf.len() < 16 {
        return Ok(ProxyParse::Partial);
    }
    let version = buf[12] >> 4;
    let command = buf[12] & 0x0f;
    if version != 2 {
        return Err(invalid(format!("unsupported version {version}")));
    }
    if command > 1 {
        return Err(invalid(format!("unsupported command {command}")));
    }
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if 16 + len > V2_MAX {
        return Err(invalid(format!("header of {} bytes", 16 + len)));
    }
    if buf.len() < 16 + len {
        return Ok(ProxyParse::Partial);
    }
    let total = 16 + len;
    let unknown = |protocol| ProxyInfo {
        protocol,
        client: None,
        proxy: None,
    };
    if command == 0 {
        // LOCAL: the proxy's own connection (a health check).
        return Ok(ProxyParse::Done(unknown("LOCAL"), total));
    }
    let family = buf[13] >> 4;
    let transport = buf[13] & 0x0f;
    if family == 0 {
        return Ok(ProxyParse::Done(unknown("UNSPEC"), total));
    }
    if transport != 1 {
        return Err(invalid("only TCP (STREAM) is supported"));
    }
    let a = &buf[16..total];
    let info = match family {
        1 => {
            if a.len() < 12 {
                return Err(invalid("short IPv4 address block"));
            }
            let ip = |i: usize| IpAddr::from([a[i], a[i + 1], a[i + 2], a[i + 3]]);
            ProxyInfo {
                protocol: "TCP4",
                client: Some(SocketAddr::new(ip(0), u16::from_be_bytes([a[8], a[9]]))),
                proxy: Some(SocketAddr::new(ip(4), u16::from_be_bytes([a[10], a[11]]))),
            }
        }
        2 => {
            if a.len() < 36 {
                return Err(invalid("short IPv6 address block"));
            }
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::from(o)
            };
            ProxyInfo {
                protocol: "TCP6",
                client: Some(SocketAddr::new(ip(0), u16::from_be_bytes([a[32], a[33]]))),
                proxy: Some(SocketAddr::new(ip(16), u16::from_be_bytes([a[34], a[35]]))),
            }
        }
        other => return Err(invalid(format!("unsupported address family {other}"))),
    };
    Ok(ProxyParse::Done(info, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, addr: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        h.extend_from_slice(addr);
        h
    }

    #[test]
    fn v1_lines() {
        let buf = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\nGET / HTTP/1.1\r\n";
        let Ok(ProxyParse::Done(info, n)) = parse_proxy(buf, ProxyMode::Auto) else {
            panic!()
        };
        assert_eq!(&buf[n..n + 3], b"GET");
        assert_eq!(info.protocol, "TCP4");
        assert_eq!(info.client, Some("203.0.113.7:51234".parse().unwrap()));
        assert_eq!(info.proxy, Some("10.0.0.1:80".parse().unwrap()));
        let six = b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
        let Ok(ProxyParse::Done(info, _)) = parse_proxy(six, ProxyMode::V1) else {
            panic!()
        };
        assert_eq!(info.client, Some("[2001:db8::1]:1".parse().unwrap()));
        for bad in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        ] {
            assert!(parse_proxy(bad, ProxyMode::Auto).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_proxy(b"PROXY TCP4 1.2", ProxyMode::Auto),
            Ok(ProxyParse::Partial)
        );
        assert!(parse_proxy(&[b'P'; 200], ProxyMode::Auto).is_ok_and(|p| p == ProxyParse::NotProxy));
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(parse_proxy(&long, ProxyMode::Auto).is_err());
    }

    #[test]
    fn v2_headers() {
        let mut a4 = vec![203, 0, 113, 7, 10, 0, 0, 1];
        a4.extend_from_slice(&51234u16.to_be_bytes());
        a4.extend_from_slice(&443u16.to_be_bytes());
        a4.extend_from_slice(&[0x04, 0, 1, 0]); // a TLV, skipped
        let h = v2(1, 0x11, &a4);
        let mut buf = h.clone();
        buf.extend_from_slice(b"GET /");
        let Ok(ProxyParse::Done(info, n)) = parse_proxy(&buf, ProxyMode::V2) else {
            panic!()
        };
        assert_eq!(n, h.len());
        assert_eq!(info.client, Some("203.0.113.7:51234".parse().unwrap()));
        assert_eq!(info.proxy, Some("10.0.0.1:443".parse().unwrap()));
        let mut a6 = [0u8; 36].to_vec();
        a6[15] = 1;
        a6[32..34].copy_from_slice(&7u16.to_be_bytes());
        let Ok(ProxyParse::Done(info, _)) = parse_proxy(&v2(1, 0x21, &a6), ProxyMode::Auto) else {
            panic!()
        };
        assert_eq!(info.client, Some("[::1]:7".parse().unwrap()));
        let Ok(ProxyParse::Done(local, _)) = parse_proxy(&v2(0, 0, &[]), ProxyMode::Auto) else {
            panic!()
        };
        assert_eq!((local.protocol, local.client), ("LOCAL", None));
        assert_eq!(
            parse_proxy(&h[..20], ProxyMode::Auto),
            Ok(ProxyParse::Partial)
        );
        assert_eq!(
            parse_proxy(&h[..5], ProxyMode::Auto),
            Ok(ProxyParse::Partial)
        );
        assert!(
            parse_proxy(&v2(1, 0x12, &a4), ProxyMode::Auto).is_err(),
            "UDP"
        );
        assert!(
            parse_proxy(&v2(1, 0x11, &a4[..8]), ProxyMode::Auto).is_err(),
            "short"
        );
        assert!(
            parse_proxy(&v2(2, 0x11, &a4), ProxyMode::Auto).is_err(),
            "command"
        );
        // v2 is not looked for in v1 mode, nor v1 in v2 mode.
        assert_eq!(parse_proxy(&h, ProxyMode::V1), Ok(ProxyParse::NotProxy));
        assert_eq!(
            parse_proxy(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyMode::V2),
            Ok(ProxyParse::NotProxy)
        );
        assert_eq!(
            parse_proxy(b"GET / HTTP/1.1\r\n", ProxyMode::Auto),
            Ok(ProxyParse::NotProxy)
        );
    }
}
