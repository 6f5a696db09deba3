//! Listening sockets and accepted streams: binding with gunicorn's options,
//! adopting inherited descriptors (systemd, `fd://N`, re-exec), and the
//! non-blocking accept/read/write/sendfile calls the worker's event loop uses.

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrLike,
    SockaddrStorage, UnixAddr,
};

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// A unix socket. `owned_path` is set when corral created the socket
    /// file itself and must unlink it on shutdown; it is `None` for sockets
    /// inherited from systemd or a previous master.
    Unix {
        listener: UnixListener,
        path: Option<PathBuf>,
        owned_path: bool,
    },
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Where a socket lives, as printed in logs and given to the environ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(Option<PathBuf>),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "http://{a}"),
            Addr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Addr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl Listener {
    /// Bind and listen on a TCP address. SO_REUSEADDR always (restarts must
    /// not wait for TIME_WAIT), SO_REUSEPORT when asked.
    pub fn bind_tcp(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<Self> {
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        if reuse_port {
            socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
        }
        if addr.is_ipv6() {
            // `[::]:8000` means IPv6 only, as gunicorn does; a separate
            // `0.0.0.0:8000` bind covers IPv4.
            socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
        }
        match addr {
            SocketAddr::V4(a) => socket::bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
            SocketAddr::V6(a) => socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
        }
        listen(&fd, backlog)?;
        Ok(Listener::Tcp(TcpListener::from(fd)))
    }

    /// Bind and listen on a unix socket path, replacing a stale socket file
    /// left by a previous run (but never a non-socket file).
    pub fn bind_unix(path: &Path, backlog: i32) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                std::fs::remove_file(path)?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
        }
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        listen(&fd, backlog)?;
        Ok(Listener::Unix {
            listener: UnixListener::from(fd),
            path: Some(path.to_path_buf()),
            owned_path: true,
        })
    }

    /// Adopt an inherited descriptor (systemd socket activation, `fd://N`, a
    /// re-exec). It must be a stream socket; `listen()` is called only if it
    /// is not listening yet (systemd already did).
    pub fn from_fd(fd: OwnedFd, backlog: i32) -> io::Result<Self> {
        let ty = socket::getsockopt(&fd, sockopt::SockType)
            .map_err(|e| io::Error::other(format!("fd {} is not a socket ({e})", raw(&fd))))?;
        if ty != SockType::Stream {
            return Err(io::Error::other(format!(
                "fd {} is not a stream socket ({ty:?})",
                raw(&fd)
            )));
        }
        if !socket::getsockopt(&fd, sockopt::AcceptConn)? {
            listen(&fd, backlog)?;
        }
        let local: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
        match local.family() {
            Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
                Ok(Listener::Tcp(TcpListener::from(fd)))
            }
            Some(AddressFamily::Unix) => {
                let path = local
                    .as_unix_addr()
                    .and_then(|u| u.path())
                    .map(Path::to_path_buf);
                Ok(Listener::Unix {
                    listener: UnixListener::from(fd),
                    path,
                    owned_path: false,
                })
            }
            other => Err(io::Error::other(format!(
                "fd {} has unsupported address family {other:?}",
                raw(&fd)
            ))),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> Addr {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => Addr::Tcp(a),
                Err(_) => Addr::Unix(None),
            },
            Listener::Unix { path, .. } => Addr::Unix(path.clone()),
        }
    }

    /// Accept one connection, non-blocking and close-on-exec.
    /// `Ok(None)` when nothing is pending.
    pub fn accept(&self) -> io::Result<Option<(Stream, Addr)>> {
        // The peer's address comes with the accept: no getpeername call.
        // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
        let mut peer: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `peer` and `len` are valid for writes and `len` holds
        // the size of `peer`, as accept4(2) requires.
        let fd = unsafe {
            libc::accept4(
                self.as_fd().as_raw_fd(),
                (&mut peer as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) => Ok(None),
                // The peer gave up between the wake-up and accept: nothing
                // to do.
                Some(libc::ECONNABORTED) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: accept4 just returned this descriptor; nothing else owns it.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Some(match self {
            Listener::Tcp(_) => {
                // TCP_NODELAY comes from the listener (`set_nonblocking`):
                // Linux copies it to every connection accepted from it, so
                // no system call per connection.
                let s = TcpStream::from(fd);
                let peer = socket_addr(&peer)
                    .or_else(|| s.peer_addr().ok())
                    .map_or(Addr::Unix(None), Addr::Tcp);
                (Stream::Tcp(s), peer)
            }
            Listener::Unix { .. } => (Stream::Unix(UnixStream::from(fd)), Addr::Unix(None)),
        }))
    }

    /// Switch the listener to non-blocking mode (workers accept from
    /// epoll), and a TCP one to TCP_NODELAY, which the connections
    /// accepted from it inherit: responses are written whole, and Nagle
    /// would only add latency.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => {
                l.set_nonblocking(true)?;
                // Not fatal: a stream socket from a socket unit may be of
                // a protocol without the option (SCTP), where it means
                // nothing anyway.
                let _ = socket::setsockopt(l, sockopt::TcpNoDelay, &true);
                Ok(())
            }
            Listener::Unix { listener, .. } => listener.set_nonblocking(true),
        }
    }

    /// Remove the socket file if corral created it.
    pub fn unlink(&self) {
        if let Listener::Unix {
            path: Some(p),
            owned_path: true,
            ..
        } = self
        {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The descriptor number, for placing it in a new master's fd table.
    pub fn as_raw(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }

    /// Prefix of the descriptor names corral gives the sockets it bound
    /// itself (in the fd store, and across a re-exec). A `/` cannot occur in
    /// a systemd unit name, so these never collide with the names systemd
    /// gives socket units' descriptors (the unit name by default).
    pub const NAME_PREFIX: &'static str = "corral/";

    /// The descriptor name for a socket corral bound itself: the prefix and
    /// the address, without the characters the protocol reserves (`:`).
    pub fn own_name(&self) -> String {
        let s = match self.addr() {
            Addr::Tcp(a) => a.to_string(),
            Addr::Unix(Some(p)) => format!("unix/{}", p.display()),
            Addr::Unix(None) => "unix".into(),
        };
        let clean: String = s
            .chars()
            .map(|c| if c == ':' || c.is_control() { '_' } else { c })
            .take(240)
            .collect();
        format!("{}{clean}", Self::NAME_PREFIX)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    let backlog =
        socket::Backlog::new(backlog.clamp(1, i32::MAX)).unwrap_or(socket::Backlog::MAXCONN);
    socket::listen(fd, backlog).map_err(io::Error::from)
}

/// An IPv4 or IPv6 address as accept4(2) wrote it.
fn socket_addr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any.
            let sin = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

impl Stream {
    /// Write several buffers with one syscall.
    pub fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    /// Read at most `max` bytes onto the end of `into`, straight into its
    /// spare capacity: a request body lands where it stays, without a pass
    /// through the connection's read buffer or clearing memory first.
    pub fn read_append(&mut self, into: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        into.reserve(max);
        let spare = into.spare_capacity_mut();
        let want = spare.len().min(max);
        // SAFETY: the pointer is valid for writes of `want` bytes (the spare
        // capacity just reserved); read(2) writes at most that many.
        let n = unsafe { libc::read(self.as_fd().as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the first `n` spare bytes, and
        // n <= want <= capacity - len.
        unsafe { into.set_len(into.len() + n) };
        Ok(n)
    }

    /// Send `count` bytes of `file` from `offset` straight from the page
    /// cache.
    pub fn sendfile(
        &mut self,
        file: &std::fs::File,
        offset: &mut i64,
        count: usize,
    ) -> io::Result<usize> {
        nix::sys::sendfile::sendfile64(self.as_fd(), file.as_fd(), Some(offset), count)
            .map_err(io::Error::from)
    }

    /// Half-close the write side, so the client sees EOF after the last
    /// response while we can still drain what it sent.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection accepted from a listener a worker prepared has
    /// TCP_NODELAY without being set one by one.
    #[test]
    fn accepted_connections_inherit_nodelay() {
        let l = Listener::bind_tcp("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        l.set_nonblocking().unwrap();
        let Addr::Tcp(addr) = l.addr() else {
            panic!("a TCP listener");
        };
        let _client = TcpStream::connect(addr).unwrap();
        let accepted = loop {
            if let Some((s, _)) = l.accept().unwrap() {
                break s;
            }
            std::thread::yield_now();
        };
        let Stream::Tcp(s) = accepted else {
            panic!("a TCP stream");
        };
        assert!(s.nodelay().unwrap());
    }
}
