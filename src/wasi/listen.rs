//! Listening sockets the host hands to a run ([`PreopenSocket`]): checked and made
//! non-blocking once, when the host gives them; duplicated into each run's descriptor
//! table when the run starts (`WasiState::new`), where `sock_accept` and `poll_oneoff`
//! serve them (`sock.rs`, `poll.rs`).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::net::{AddressFamily, SocketType};

/// A bound, listening stream socket (TCP over IPv4 or IPv6, or Unix) that runs give to
/// their guest as a preopened descriptor, after stdio and before the preopened
/// directories, as the Wasmtime 46 CLI's `--tcplisten` and `-S listenfd` did.
///
/// The socket is the library's own duplicate of what the host gave; each run that starts
/// duplicates it again into its descriptor table, so a guest closing it, or a run ending,
/// never closes the host's listener. It is non-blocking (`O_NONBLOCK`), so that no thread
/// of a run ever blocks in `accept(2)` out of reach of the run's end; that flag belongs to
/// the open socket, so the host's own descriptor of it becomes non-blocking too. Several
/// runs may accept on one listener at once: each connection goes to one of them.
#[derive(Clone, Debug)]
pub struct PreopenSocket {
    fd: Arc<OwnedFd>,
}

impl PreopenSocket {
    /// Takes a listening socket the host owns: `fd` is duplicated (the host keeps its own
    /// descriptor) after checking that it is a stream socket that listens.
    pub fn from_listener(fd: BorrowedFd<'_>) -> io::Result<PreopenSocket> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        let domain = rustix::net::sockopt::socket_domain(fd)?;
        if ![AddressFamily::INET, AddressFamily::INET6, AddressFamily::UNIX].contains(&domain) {
            return Err(invalid("not a TCP or Unix socket"));
        }
        if rustix::net::sockopt::socket_type(fd)? != SocketType::STREAM {
            return Err(invalid("not a stream socket"));
        }
        if !rustix::net::sockopt::socket_acceptconn(fd)? {
            return Err(invalid("the socket is not listening"));
        }
        let own = crate::hostfd::above_stdio(rustix::io::fcntl_dupfd_cloexec(fd, crate::hostfd::LOWEST)?)?;
        set_nonblocking(own.as_fd())?;
        Ok(PreopenSocket { fd: Arc::new(own) })
    }

    /// Binds a TCP socket to `addr` ("127.0.0.1:8080", "[::1]:0"; port 0 picks a free
    /// port, see [`PreopenSocket::local_addr`]) and listens on it (`SO_REUSEADDR`, a
    /// backlog of 128), owned by the library.
    pub fn bind_tcp(addr: &str) -> io::Result<PreopenSocket> {
        let addr: SocketAddr =
            addr.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr:?} is no IP:port")))?;
        let listener = TcpListener::bind(addr)?;
        let own = crate::hostfd::above_stdio(OwnedFd::from(listener))?;
        set_nonblocking(own.as_fd())?;
        Ok(PreopenSocket { fd: Arc::new(own) })
    }

    /// The address the socket is bound to (the port a `bind_tcp` to port 0 got).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let addr = rustix::net::getsockname(&*self.fd)?;
        SocketAddr::try_from(addr).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))
    }

    /// A duplicate for one run's descriptor table.
    pub(crate) fn duplicate(&self) -> io::Result<std::fs::File> {
        Ok(std::fs::File::from(rustix::io::fcntl_dupfd_cloexec(&*self.fd, crate::hostfd::LOWEST)?))
    }
}

impl AsFd for PreopenSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listening stream sockets are taken and made non-blocking; anything else is refused.
    #[test]
    fn only_listening_stream_sockets_are_taken() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = PreopenSocket::from_listener(tcp.as_fd()).unwrap();
        assert_eq!(s.local_addr().unwrap(), tcp.local_addr().unwrap());
        assert!(rustix::fs::fcntl_getfl(&tcp).unwrap().contains(rustix::fs::OFlags::NONBLOCK), "shared flag");
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        assert!(PreopenSocket::from_listener(dir.as_fd()).is_err());
        let connected = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
        assert!(PreopenSocket::from_listener(connected.as_fd()).is_err());
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(PreopenSocket::from_listener(udp.as_fd()).is_err());
        let bound = PreopenSocket::bind_tcp("127.0.0.1:0").unwrap();
        assert_ne!(bound.local_addr().unwrap().port(), 0);
        assert!(PreopenSocket::bind_tcp("localhost:80").is_err(), "no name resolution");
    }
}
