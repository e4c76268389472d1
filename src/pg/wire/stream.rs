//! The byte stream under a wire connection: TCP, a Unix socket, or TLS over TCP, as the
//! connection's `sslmode` asks (`disable`: plain; `prefer`: TLS when the server offers it;
//! `require`: TLS or nothing, the certificate not verified, as libpq's `require`).

use super::error::WireError;
use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

pub enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

/// How many hosts the config names (a multi-host string names several).
pub fn host_count(config: &Config) -> usize {
    config.get_hosts().len().max(config.get_hostaddrs().len())
}

/// Open the stream to the config's host `i`.
pub async fn open_host(config: &Config, i: usize) -> Result<Stream, WireError> {
    let hosts = config.get_hosts();
    let ports = config.get_ports();
    let addrs = config.get_hostaddrs();
    if host_count(config) == 0 {
        return Err(WireError::Client("no host to connect to".into()));
    }
    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    match (addrs.get(i), hosts.get(i)) {
        (Some(ip), host) => tcp(config, &ip.to_string(), host, port).await,
        (None, Some(Host::Tcp(name))) => {
            tcp(config, name, Some(&Host::Tcp(name.clone())), port).await
        }
        #[cfg(unix)]
        (None, Some(Host::Unix(dir))) => UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
            .await
            .map(Stream::Unix)
            .map_err(WireError::from),
        _ => Err(WireError::Client("unsupported host".into())),
    }
}

async fn tcp(
    config: &Config,
    addr: &str,
    host: Option<&Host>,
    port: u16,
) -> Result<Stream, WireError> {
    let stream = TcpStream::connect((addr, port)).await?;
    stream.set_nodelay(true)?;
    match config.get_ssl_mode() {
        SslMode::Disable => Ok(Stream::Tcp(stream)),
        mode => {
            let domain = match host {
                Some(Host::Tcp(name)) => name.clone(),
                _ => addr.to_string(),
            };
            tls(stream, &domain, mode == SslMode::Require).await
        }
    }
}

/// SSLRequest, then TLS if the server says 'S'.
async fn tls(mut stream: TcpStream, domain: &str, required: bool) -> Result<Stream, WireError> {
    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut buf);
    stream.write_all(&buf).await?;
    let answer = stream.read_u8().await?;
    if answer != b'S' {
        if required {
            return Err(WireError::Client(
                "the server does not support TLS (sslmode=require)".into(),
            ));
        }
        return Ok(Stream::Tcp(stream));
    }
    let connector = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()
        .map_err(|e| WireError::Client(format!("cannot set up TLS: {e}")))?;
    let tls = tokio_native_tls::TlsConnector::from(connector)
        .connect(domain, stream)
        .await
        .map_err(|e| WireError::Lost(format!("TLS handshake: {e}")))?;
    Ok(Stream::Tls(Box::new(tls)))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
