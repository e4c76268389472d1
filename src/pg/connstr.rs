//! Connection strings of a `[cluster]`: libpq URIs or key=value strings, with the PG*
//! environment variables (and PGPASSFILE / ~/.pgpass) filling what they leave out.

use std::str::FromStr;
use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// Parse a connection string; the error never contains the password.
pub fn parse_conninfo(text: &str) -> Result<Config, String> {
    let mut config =
        Config::from_str(text).map_err(|e| format!("not a valid connection string: {e}"))?;
    fill_from_env(&mut config);
    if config.get_password().is_none() {
        if let Some(pw) = pgpass_lookup(&config) {
            config.password(pw);
        }
    }
    config.application_name("pgbench-repl");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(5));
    }
    Ok(config)
}

fn fill_from_env(config: &mut Config) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        config.host(env("PGHOST").unwrap_or_else(|| "localhost".into()));
    }
    if config.get_ports().is_empty() {
        if let Some(p) = env("PGPORT").and_then(|p| p.parse().ok()) {
            config.port(p);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env("PGDATABASE") {
            config.dbname(&db);
        }
    }
    if config.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            config.password(pw);
        }
    }
}

/// The password for this host/port/db/user from PGPASSFILE or ~/.pgpass.
fn pgpass_lookup(config: &Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".pgpass"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        Host::Unix(p) => p.to_string_lossy().into_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or("").to_string();
    let db = config.get_dbname().unwrap_or(&user).to_string();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let f: Vec<&str> = line.splitn(5, ':').collect();
            let ok = |i: usize, v: &str| f.get(i).is_some_and(|x| *x == "*" || *x == v);
            (f.len() == 5 && ok(0, &host) && ok(1, &port) && ok(2, &db) && ok(3, &user))
                .then(|| f[4].to_string())
        })
}

/// `host:port` for messages (never a password).
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            Host::Tcp(h) => format!("{h}:{p}"),
            Host::Unix(path) => format!("{}:{p}", path.display()),
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_string()
    } else {
        hosts.join(",")
    };
    format!(
        "{}@{hosts}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("postgres")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_key_value_forms() {
        let a = parse_conninfo("postgres://app:secret@db1:5433/shop?sslmode=disable").unwrap();
        assert_eq!(describe(&a), "app@db1:5433/shop");
        let b = parse_conninfo("host=10.0.0.5 port=6000 user=bench dbname=x").unwrap();
        assert_eq!(describe(&b), "bench@10.0.0.5:6000/x");
        let err = parse_conninfo("postgres://u:topsecret@h:notaport/db").unwrap_err();
        assert!(!err.contains("topsecret"), "{err}");
    }
}
