//! A service's listening socket, bound before its HTTP server starts so that tests can ask for
//! port 0 and read back the port they got, and how many workers serve it.

use std::net::TcpListener;

/// A bound socket and its port.
pub struct Listener {
    pub socket: TcpListener,
    pub port: u16,
}

/// Binds `host:port` (port 0: any free port).
pub fn bind(host: &str, port: u16) -> std::io::Result<Listener> {
    let socket = TcpListener::bind((host, port))?;
    let port = socket.local_addr()?.port();
    Ok(Listener { socket, port })
}

/// The HTTP workers: `configured`, or one per available core when it is 0.
pub fn workers(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        workers => workers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_a_free_port_and_reports_it() {
        let listener = bind("127.0.0.1", 0).unwrap();
        assert_ne!(listener.port, 0);
        assert_eq!(listener.socket.local_addr().unwrap().port(), listener.port);
    }

    #[test]
    fn zero_workers_means_one_per_core() {
        assert_eq!(workers(3), 3);
        assert!(workers(0) >= 1);
    }
}
