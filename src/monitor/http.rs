//! The HTTP endpoints: `/health/db`, `/metrics`, the status page `/` and its data
//! `/api/status`. Loopback by default; bound before anything starts, so a busy address is a
//! clear error.

use super::health::health;
use super::metrics::render;
use super::state::Shared;
use crate::error::usage;
use anyhow::Result;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use tokio::sync::watch;

/// A running server: where it listens, and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stop serving (after the run's last data is in).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Bind `addr` and serve `state` until stopped.
pub async fn serve(addr: &str, state: Shared) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/health/db", get(health_db))
        .route("/metrics", get(metrics))
        .with_state(state);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok(Server {
        addr: local,
        stop,
        task,
    })
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, super::state::MonitorState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long an answer waits for the first sample: nothing is claimed of a node before it
/// was looked at.
const FIRST_SAMPLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn first_sample(state: &Shared) {
    let deadline = tokio::time::Instant::now() + FIRST_SAMPLE_WAIT;
    while lock(state).samples == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn health_db(State(state): State<Shared>) -> Response {
    first_sample(&state).await;
    let (code, body) = health(&lock(&state));
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    first_sample(&state).await;
    let text = render(&lock(&state));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn status(State(state): State<Shared>) -> Response {
    first_sample(&state).await;
    let m = lock(&state);
    let (code, h) = health(&m);
    let history: serde_json::Map<String, serde_json::Value> = m
        .history
        .iter()
        .map(|(n, h)| (n.clone(), serde_json::json!(h.iter().collect::<Vec<_>>())))
        .collect();
    Json(serde_json::json!({
        "t_s": m.t_s,
        "samples": m.samples,
        "status": h.status,
        "http_status": code,
        "lag_alert": m.lag_alert,
        "split_brain": m.split_brain,
        "nodes": m.nodes,
        "history": history,
    }))
    .into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}
