//! Checking `[[transaction]]` entries: targets, params, SQL with `$params`, COPY.

use super::file::TransactionDef;
use super::source::{nearest, Source};
use super::BUILTIN_PARAMS;
use crate::workload::generators::Generator;
use crate::workload::sql::{compile, output_names};
use crate::workload::*;
use anyhow::Result;
use std::collections::HashSet;
use toml::Spanned;

pub fn build_transactions(src: &Source, defs: &[TransactionDef]) -> Result<Vec<Transaction>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for def in defs {
        let name = def.name.get_ref().clone();
        let key = |k: &str| format!("transaction '{name}', {k}");
        if !seen.insert(name.clone()) {
            return Err(src.error_at(
                def.name.span(),
                "transaction.name",
                format!("'{name}' is defined twice"),
            ));
        }
        let target = match def.target.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("primary") => Target::Primary,
            Some("standby") => Target::Standby,
            Some("any") => Target::Any,
            Some(other) => {
                return Err(src.error_at(
                    def.target.as_ref().unwrap().span(),
                    &key("target"),
                    format!("'{other}' is not a target: expected primary, standby or any"),
                ))
            }
        };
        let mut params = Vec::new();
        for (pname, spec) in &def.params {
            let g = Generator::parse(spec.get_ref())
                .map_err(|e| src.error_at(spec.span(), &key(&format!("params.{pname}")), e))?;
            params.push((pname.clone(), g));
        }
        let body = match (&def.sql, &def.copy) {
            (Some(_), Some(c)) => {
                return Err(src.error_at(
                    c.span(),
                    &key("copy"),
                    "a transaction has either sql or copy, not both",
                ))
            }
            (None, None) => {
                return Err(src.error_at(
                    def.name.span(),
                    &key("sql"),
                    "missing: give sql = [...] or copy = {...}",
                ))
            }
            (Some(sql), None) => Body::Sql(compile_sql(src, &name, sql, &params)?),
            (None, Some(copy)) => {
                if target != Target::Primary {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy"),
                        "a copy writes, so its target must be primary",
                    ));
                }
                let c = copy.get_ref();
                if !(1..=100_000_000).contains(&c.rows_per_tx) {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy.rows_per_tx"),
                        format!(
                            "{} is not a row count: expected 1 to 100000000",
                            c.rows_per_tx
                        ),
                    ));
                }
                if c.columns.is_empty() {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy.columns"),
                        "name at least one column",
                    ));
                }
                let columns = c
                    .columns
                    .iter()
                    .map(|(col, spec)| {
                        Generator::parse(spec)
                            .map(|g| (col.clone(), g))
                            .map_err(|e| {
                                src.error_at(copy.span(), &key(&format!("copy.columns.{col}")), e)
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Body::Copy(CopySpec {
                    table: c.table.clone(),
                    rows_per_tx: c.rows_per_tx as u64,
                    columns,
                })
            }
        };
        let pipeline = match &def.pipeline {
            Some(p) if *p.get_ref() => {
                check_pipeline(src, &name, p.span(), &body, &params)?;
                true
            }
            _ => false,
        };
        out.push(Transaction {
            name,
            target,
            params,
            body,
            pipeline,
        });
    }
    Ok(out)
}

/// A pipelined transaction sends every statement before any reply comes back: no statement
/// may use what an earlier one returned, and it must be SQL.
fn check_pipeline(
    src: &Source,
    tx: &str,
    span: std::ops::Range<usize>,
    body: &Body,
    params: &[(String, Generator)],
) -> Result<()> {
    let key = format!("transaction '{tx}', pipeline");
    let Body::Sql(statements) = body else {
        return Err(src.error_at(
            span,
            &key,
            "only sql transactions can be pipelined, not copy",
        ));
    };
    for (i, st) in statements.iter().enumerate() {
        for p in &st.params {
            let known = params.iter().any(|(n, _)| n == p) || BUILTIN_PARAMS.contains(&p.as_str());
            if !known {
                return Err(src.error_at(
                    span,
                    &key,
                    format!("sql[{i}] uses ${p}, which an earlier statement returns: a pipeline sends every statement before any reply, so its statements must be independent"),
                ));
            }
        }
    }
    Ok(())
}

fn compile_sql(
    src: &Source,
    tx: &str,
    sql: &Spanned<super::file::SqlList>,
    params: &[(String, Generator)],
) -> Result<Vec<crate::workload::sql::Statement>> {
    let statements = sql.get_ref().statements();
    if statements.is_empty() || statements.iter().any(|s| s.trim().is_empty()) {
        return Err(src.error_at(
            sql.span(),
            &format!("transaction '{tx}', sql"),
            "a statement is empty",
        ));
    }
    let mut defined: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
    defined.extend(BUILTIN_PARAMS.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for (i, text) in statements.iter().enumerate() {
        let stmt = compile(text);
        for p in &stmt.params {
            if !defined.contains(p) {
                let hint = nearest(p, defined.iter().map(String::as_str))
                    .map(|n| format!(" (did you mean ${n}?)"))
                    .unwrap_or_default();
                return Err(src.error_at(
                    sql.span(),
                    &format!("transaction '{tx}', sql[{i}]"),
                    format!(
                        "${p} is not defined: define it in params, or return it from an earlier statement with RETURNING ... AS {p}{hint}"
                    ),
                ));
            }
        }
        defined.extend(output_names(text));
        out.push(stmt);
    }
    Ok(out)
}
