//! A node the tool reaches (an `Endpoint`) and an open connection to it (a `Conn`: the client
//! and its statements, prepared once per connection).

use super::wire::WireConn;
use anyhow::{anyhow, Result};
use postgres_native_tls::MakeTlsConnector;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Statement};

/// A node the load can reach.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub config: Config,
}

impl Endpoint {
    /// `user@host:port/db`: for messages, without a password.
    pub fn describe(&self) -> String {
        super::connstr::describe(&self.config)
    }

    /// Open a connection within the config's connect_timeout (5 s if unset); errors name the
    /// node and its address, never the password.
    async fn within_timeout<T, E: std::fmt::Display>(
        &self,
        opening: impl std::future::Future<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        let timeout = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(5));
        let what = || format!("cannot connect to {} ({})", self.name, self.describe());
        match tokio::time::timeout(timeout, opening).await {
            Err(_) => Err(anyhow!("{}: timed out after {timeout:?}", what())),
            Ok(Err(e)) => Err(anyhow!("{}: {e:#}", what())),
            Ok(Ok(t)) => Ok(t),
        }
    }

    /// Connect, with the run's session settings applied.
    pub async fn connect(&self, synchronous_commit: Option<&str>) -> Result<Conn> {
        let client = self.within_timeout(open(&self.config)).await?;
        if let Some(level) = synchronous_commit {
            client
                .batch_execute(&format!("SET synchronous_commit = {level}"))
                .await
                .map_err(|e| anyhow!("SET synchronous_commit on {}: {e}", self.name))?;
        }
        Ok(Conn {
            client,
            statements: HashMap::new(),
            copy_types: HashMap::new(),
        })
    }
}

impl Endpoint {
    /// Connect a load client (the protocol spoken on the client's own task; see `wire`),
    /// with the run's session settings applied.
    pub async fn connect_wire(&self, synchronous_commit: Option<&str>) -> Result<WireConn> {
        let mut conn = self.within_timeout(WireConn::connect(&self.config)).await?;
        if let Some(level) = synchronous_commit {
            conn.simple(&format!("SET synchronous_commit = {level}"))
                .await
                .map_err(|e| anyhow!("SET synchronous_commit on {}: {e}", self.name))?;
        }
        Ok(conn)
    }
}

/// Open a connection and drive it on a background task: plain with `sslmode=disable` (the
/// lab), else TLS when the server offers it (`prefer`, libpq's default) or insists
/// (`require`). As libpq's `require`, the server's certificate is not verified.
pub async fn open(config: &Config) -> Result<Client> {
    if config.get_ssl_mode() == SslMode::Disable {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        return Ok(client);
    }
    let (client, connection) = config.connect(tls_connector()?).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn tls_connector() -> Result<MakeTlsConnector> {
    static TLS: std::sync::OnceLock<Result<native_tls::TlsConnector, String>> =
        std::sync::OnceLock::new();
    let tls = TLS.get_or_init(|| {
        native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))
    });
    match tls {
        Ok(t) => Ok(MakeTlsConnector::new(t.clone())),
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// An open connection and what was prepared on it.
pub struct Conn {
    pub client: Client,
    statements: HashMap<(u16, u16), Statement>,
    copy_types: HashMap<u16, Vec<Type>>,
}

impl Conn {
    /// Statement `stmt` of transaction `tx`, prepared on first use.
    pub async fn statement(
        &mut self,
        tx: u16,
        stmt: u16,
        text: &str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(&(tx, stmt)) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(text).await?;
        self.statements.insert((tx, stmt), s.clone());
        Ok(s)
    }

    /// Column types of a COPY target, looked up once per connection.
    pub async fn copy_types(
        &mut self,
        tx: u16,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<Type>, tokio_postgres::Error> {
        if let Some(t) = self.copy_types.get(&tx) {
            return Ok(t.clone());
        }
        let probe = format!("SELECT {} FROM {table} LIMIT 0", columns.join(", "));
        let s = self.client.prepare(&probe).await?;
        let types: Vec<Type> = s.columns().iter().map(|c| c.type_().clone()).collect();
        self.copy_types.insert(tx, types.clone());
        Ok(types)
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
