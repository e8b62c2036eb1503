//! A loopback port where a connection is refused, for as long as it is
//! held: the "service down" of a test.
//!
//! A port bound and then released (the usual trick) is free again at once,
//! and a test running in parallel may listen on it before the client under
//! test dials it. A socket that stays bound without listening keeps the port
//! reserved, and the kernel answers every connection to it with a reset.

use std::net::{Ipv4Addr, SocketAddr};

/// A reserved loopback port that refuses connections; freed when dropped.
pub struct RefusingPort {
    /// Bound, never listening; dropping it frees the port.
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl RefusingPort {
    /// Reserves a free loopback port without listening on it.
    pub fn bind() -> std::io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = socket.local_addr()?.port();
        Ok(Self {
            _socket: socket,
            port,
        })
    }

    /// The reserved port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, the form service URLs take.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_are_refused_and_the_port_stays_taken() {
        let port = RefusingPort::bind().unwrap();
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", port.port())).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        let taken = std::net::TcpListener::bind(("127.0.0.1", port.port()));
        assert_eq!(taken.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    }
}
