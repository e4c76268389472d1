//! A worker's connection to one node: the client, its statements (prepared once per
//! connection), and the session settings of the run.

use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::time::Duration;
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
        crate::config::describe(&self.config)
    }

    /// Connect, with the run's session settings applied.
    pub async fn connect(&self, synchronous_commit: Option<&str>) -> Result<Conn> {
        let timeout = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(5));
        let (client, connection) = tokio::time::timeout(timeout, self.config.connect(NoTls))
            .await
            .map_err(|_| {
                anyhow!(
                    "cannot connect to {} ({}): timed out after {timeout:?}",
                    self.name,
                    self.describe()
                )
            })?
            .map_err(|e| anyhow!("cannot connect to {} ({}): {e}", self.name, self.describe()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
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
