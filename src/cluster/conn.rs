//! Connecting to a node with tokio-postgres, with a timeout and an error that names the server
//! (and never the password).

use anyhow::{anyhow, Result};
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// Where and as whom to connect.
#[derive(Clone)]
pub struct ConnSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
}

impl std::fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl ConnSpec {
    /// `user@host:port/db`, for messages: no password.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    pub fn config(&self, timeout: Duration) -> Config {
        let mut c = Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("pgbench-repl")
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .connect_timeout(timeout);
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }

    /// Connect and drive the connection on a background task.
    pub async fn connect(&self, timeout: Duration) -> Result<Client> {
        let config = self.config(timeout);
        let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
            .await
            .map_err(|_| {
                anyhow!(
                    "cannot connect to {}: timed out after {timeout:?}",
                    self.describe()
                )
            })?
            .map_err(|e| anyhow!("cannot connect to {}: {e}", self.describe()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}
