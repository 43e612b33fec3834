//! A TCP proxy a test can switch off and on, to simulate a broker or object
//! store outage for the services behind it without touching the shared
//! server: switching off drops every open connection and closes new ones as
//! soon as they are accepted; switching on lets connections through again.
//! Hanging is the nastier fault: connections stay open and new ones are
//! accepted, but no byte goes through either way (a stalled server, a
//! black-holing firewall), until the proxy is switched off or dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every switch-off; open connections end when it changes.
    outages: watch::Sender<u64>,
    /// Set by [`Proxy::hang`]: nothing is forwarded any more.
    hung: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds a free port");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (outages, _) = watch::channel(0u64);
        let (hung, _) = watch::channel(false);
        let upstream = upstream.to_string();
        let task = {
            let up = up.clone();
            let outages = outages.clone();
            let hung = hung.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        // Dropping the accepted socket closes it at once.
                        continue;
                    }
                    let upstream = upstream.clone();
                    let outage = outages.subscribe();
                    tokio::spawn(forward(client, upstream, outage, hung.subscribe()));
                }
            })
        };
        Proxy {
            addr,
            up,
            outages,
            hung,
            task,
        }
    }

    /// `host:port` clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and closes new ones until [`Proxy::switch_on`].
    pub fn switch_off(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.outages.send_modify(|n| *n += 1);
    }

    /// Lets connections through again (ending a [`Proxy::hang`] too).
    pub fn switch_on(&self) {
        self.hung.send_replace(false);
        self.up.store(true, Ordering::SeqCst);
    }

    /// Stops forwarding without closing anything: open connections and new
    /// ones stay up, silent, until [`Proxy::switch_off`] or drop.
    pub fn hang(&self) {
        self.hung.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        // Open connections end too.
        self.outages.send_modify(|n| *n += 1);
    }
}

/// Copies both ways until either side closes or an outage starts; both
/// sockets are dropped (closed) either way.
async fn forward(
    mut client: TcpStream,
    upstream: String,
    mut outage: watch::Receiver<u64>,
    mut hung: watch::Receiver<bool>,
) {
    if !*hung.borrow() {
        let Ok(mut server) = TcpStream::connect(&upstream).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            _ = outage.changed() => return,
            _ = hung.wait_for(|h| *h) => {}
        }
        // Hung: hold both sockets open, silent, until an outage or drop.
        let _ = outage.changed().await;
        drop(server);
    } else {
        let _ = outage.changed().await;
    }
    drop(client);
}
