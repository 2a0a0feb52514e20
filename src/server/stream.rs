//! A connection's socket: TCP or unix, behind one type for the event loop.

use mio::event::Source;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl super::body::Socket for Stream {
    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        use nix::errno::Errno;
        let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        match nix::sys::sendfile::sendfile64(&*self, file, Some(&mut off), len) {
            Ok(n) => Ok(n),
            Err(Errno::EINVAL | Errno::ENOSYS) => Err(io::ErrorKind::Unsupported.into()),
            Err(e) => Err(e.into()),
        }
    }

    fn peer_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        match self {
            // A unix socket says so: POLLHUP once the peer closed both ways.
            Stream::Unix(s) => {
                let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::ZERO).is_ok_and(|_| {
                    fds[0]
                        .revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
                })
            }
            // TCP cannot tell a close from a half-close before a write; a
            // FastCGI front server (nginx, lighttpd, Apache) never
            // half-closes, so its FIN means it has gone.
            Stream::Tcp(_) => true,
        }
    }

    fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
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

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// A listener in a worker's event loop.
pub enum Acceptor {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl Acceptor {
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Acceptor::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            Acceptor::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

impl Source for Acceptor {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.register(r, t, i),
            Acceptor::Unix(l) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.reregister(r, t, i),
            Acceptor::Unix(l) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.deregister(r),
            Acceptor::Unix(l) => l.deregister(r),
        }
    }
}
