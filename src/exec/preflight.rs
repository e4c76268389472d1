//! Before the load: the setup SQL, then every statement prepared once on the primary, and
//! every generated parameter bound (at its extremes) to the type the server expects. SQL the
//! server rejects and values that cannot fit are bad input (exit 2), named by transaction,
//! statement, parameter and type, before anything runs.

use crate::error::usage;
use crate::pg::{db_message, Conn};
use crate::workload::generators::Generator;
use crate::workload::value::Value;
use crate::workload::{Body, Transaction, Workload};
use anyhow::Result;
use bytes::BytesMut;
use tokio_postgres::types::{ToSql, Type};

/// Run `[setup] sql` on the primary.
pub async fn run_setup(conn: &Conn, plan: &Workload, source: &str) -> Result<()> {
    if let Some(sql) = &plan.setup_sql {
        conn.client.batch_execute(sql).await.map_err(|e| {
            usage(format!(
                "{source}: [setup] sql: the server refused it: {}",
                db_message(&e)
            ))
        })?;
    }
    Ok(())
}

/// Prepare every statement; check every generated value can be bound.
pub async fn check_statements(conn: &Conn, plan: &Workload, source: &str) -> Result<()> {
    for tx in &plan.transactions {
        match &tx.body {
            Body::Sql(statements) => {
                for (i, stmt) in statements.iter().enumerate() {
                    let prepared = conn.client.prepare(&stmt.text).await.map_err(|e| {
                        usage(format!(
                            "{source}: transaction '{}', sql[{i}]: the server refused it when prepared: {}",
                            tx.name,
                            db_message(&e)
                        ))
                    })?;
                    for (ty, name) in prepared.params().iter().zip(&stmt.params) {
                        if let Some(g) = generator(tx, name) {
                            check_fits(g, ty).map_err(|why| {
                                usage(format!(
                                    "{source}: transaction '{}', sql[{i}], parameter ${name}: {why}",
                                    tx.name
                                ))
                            })?;
                        }
                    }
                }
            }
            Body::Copy(spec) => {
                let cols: Vec<&str> = spec.columns.iter().map(|(c, _)| c.as_str()).collect();
                let probe = format!("SELECT {} FROM {} LIMIT 0", cols.join(", "), spec.table);
                let prepared = conn.client.prepare(&probe).await.map_err(|e| {
                    usage(format!(
                        "{source}: transaction '{}', copy: table {} with columns {}: {}",
                        tx.name,
                        spec.table,
                        cols.join(", "),
                        db_message(&e)
                    ))
                })?;
                for (col, (name, g)) in prepared.columns().iter().zip(&spec.columns) {
                    check_fits(g, col.type_()).map_err(|why| {
                        usage(format!(
                            "{source}: transaction '{}', copy column {name}: {why}",
                            tx.name
                        ))
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// The generator behind `$name` in this transaction (None for captured values and built-ins).
fn generator<'a>(tx: &'a Transaction, name: &str) -> Option<&'a Generator> {
    tx.params.iter().find(|(n, _)| n == name).map(|(_, g)| g)
}

/// Every extreme value of `g` encodes as `ty`, or a sentence saying which one does not.
pub fn check_fits(g: &Generator, ty: &Type) -> Result<(), String> {
    for v in g.extremes() {
        let mut buf = BytesMut::new();
        if let Err(e) = v.to_sql_checked(ty, &mut buf) {
            return Err(format!(
                "its generator can produce {}, which cannot be sent as {ty} ({e}): narrow the \
                 generator or cast in the SQL (for example ::int8 or ::text)",
                show(&v)
            ));
        }
    }
    Ok(())
}

fn show(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(t) => format!("text such as '{}'", t.chars().take(16).collect::<String>()),
        Value::Timestamp(_) => "a timestamp (now())".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_past_int4_is_named() {
        let g = Generator::parse("uniform(1, 3000000000)").unwrap();
        let why = check_fits(&g, &Type::INT4).unwrap_err();
        assert!(why.contains("3000000000") && why.contains("int4"), "{why}");
        assert!(check_fits(&g, &Type::INT8).is_ok());
        assert!(check_fits(&Generator::parse("uniform(-5, 5)").unwrap(), &Type::INT2).is_ok());
    }

    #[test]
    fn text_into_a_number_is_named() {
        let g = Generator::parse("text(10)").unwrap();
        assert!(check_fits(&g, &Type::NUMERIC)
            .unwrap_err()
            .contains("numeric"));
        assert!(check_fits(&g, &Type::TEXT).is_ok());
        let c = Generator::parse("choice(1, 'x')").unwrap();
        assert!(check_fits(&c, &Type::INT8).unwrap_err().contains("'x'"));
    }
}
