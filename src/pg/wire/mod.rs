//! The load's connections: PostgreSQL's protocol spoken directly on the client's own task.
//!
//! tokio-postgres drives each connection on a task of its own and hands every request and
//! reply across channels; for a load generator that is most of the client's CPU per
//! transaction (benches/README.md has the profile). A `WireConn` is owned by its client: the
//! client writes Bind/Execute/Sync into a buffer it reuses, sends it with one write, and reads
//! the reply itself, in place in its read buffer. Messages are encoded by postgres-protocol
//! (tokio-postgres's own codec); parameters are bound with `ToSql`. The tool's other
//! connections (setup, checks, drills) stay on tokio-postgres; the sampler's probes use this too.
//!
//! This file holds the session and its framing (reading one message, an answer up to
//! ReadyForQuery, simple queries); `extended` the prepared statements and pipelines, `copy`
//! binary COPY, `parse` the in-place readers of message bodies, `startup` the handshake.

mod copy;
mod error;
mod extended;
mod parse;
mod startup;
mod stream;

pub use error::{DbError, WireError};

use bytes::{Buf, BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use parse::{columns, db_error, db_error_fields};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull as WireNull;
use std::collections::HashMap;
use std::sync::Arc;
use stream::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};
use tokio_postgres::Config;

/// A parameter as the load binds it.
pub type Param<'a> = &'a (dyn ToSql + Sync);

/// What sees the first row of a reply: each column and its raw value (binary; None for NULL).
pub type RowFn<'f> = dyn FnMut(&Column, Option<&[u8]>) + Send + 'f;

/// A statement prepared on one connection.
#[derive(Debug)]
pub struct Prepared {
    name: String,
    pub params: Vec<Type>,
    pub columns: Vec<Column>,
}

#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub ty: Type,
}

/// A whole backend message at the front of the read buffer: its type and body length.
#[derive(Debug, Clone, Copy)]
struct Frame {
    tag: u8,
    len: usize,
}

impl Frame {
    /// Type byte, length word and body.
    fn total(self) -> usize {
        5 + self.len
    }
}

/// What `frame` read: a message to look at (not consumed yet), or an error (consumed).
enum In {
    Msg(Frame),
    Error(DbError),
}

/// An open session, owned by one client.
pub struct WireConn {
    io: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    closed: bool,
    /// By (transaction, statement): a handful, so a short list beats hashing.
    statements: Vec<((u16, u16), Arc<Prepared>)>,
    copy_types: HashMap<u16, Arc<Vec<Type>>>,
    /// Statements prepared by `prepare_new` so far.
    named: u32,
    /// Where the CopyData message being filled starts in `wbuf`.
    copy_at: Option<usize>,
    /// The transaction status of the last ReadyForQuery (`I`, `T` or `E`).
    status: u8,
}

impl WireConn {
    /// Open a session (no timeout here: the caller bounds it).
    /// Connect to the first of the config's hosts that answers (and, with
    /// `target_session_attrs=read-write`, takes writes), as libpq does.
    pub async fn connect(config: &Config) -> Result<WireConn, WireError> {
        let read_write = config.get_target_session_attrs()
            == tokio_postgres::config::TargetSessionAttrs::ReadWrite;
        let mut last = None;
        for i in 0..stream::host_count(config).max(1) {
            let mut conn = match Self::connect_host(config, i).await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            if !read_write {
                return Ok(conn);
            }
            match conn.simple("SHOW transaction_read_only").await {
                Ok(Some(v)) if v == "off" => return Ok(conn),
                Ok(_) => {
                    last = Some(WireError::Client(
                        "the server is read-only and target_session_attrs=read-write asks for one that takes writes"
                            .into(),
                    ))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| WireError::Client("no host to connect to".into())))
    }

    async fn connect_host(config: &Config, i: usize) -> Result<WireConn, WireError> {
        let io = stream::open_host(config, i).await?;
        let mut conn = WireConn {
            io,
            rbuf: BytesMut::with_capacity(8192),
            wbuf: BytesMut::with_capacity(1024),
            closed: false,
            statements: Vec::new(),
            copy_types: HashMap::new(),
            named: 0,
            copy_at: None,
            status: b'I',
        };
        startup::startup(&mut conn, config).await?;
        Ok(conn)
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Send what is buffered.
    async fn flush(&mut self) -> Result<(), WireError> {
        let r = self.io.write_all(&self.wbuf).await;
        self.wbuf.clear();
        r.map_err(|e| self.lose(e))
    }

    fn lose(&mut self, e: impl std::fmt::Display) -> WireError {
        self.closed = true;
        WireError::lost(e)
    }

    /// The next whole message at the front of the read buffer, read from the socket as needed
    /// (not consumed: its body is `self.body(f)` until `self.consume(f)`).
    async fn raw_frame(&mut self) -> Result<Frame, WireError> {
        loop {
            if self.rbuf.len() >= 5 {
                let len =
                    i32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]);
                if len < 4 {
                    return Err(self.lose(format!("invalid message length {len}")));
                }
                let frame = Frame {
                    tag: self.rbuf[0],
                    len: len as usize - 4,
                };
                if self.rbuf.len() >= frame.total() {
                    return Ok(frame);
                }
                self.rbuf.reserve(frame.total() - self.rbuf.len());
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(8192);
            }
            match self.io.read_buf(&mut self.rbuf).await {
                Ok(0) => return Err(self.lose("the server closed the connection")),
                Ok(_) => {}
                Err(e) => return Err(self.lose(e)),
            }
        }
    }

    fn body(&self, f: Frame) -> &[u8] {
        &self.rbuf[5..f.total()]
    }

    fn consume(&mut self, f: Frame) {
        self.rbuf.advance(f.total());
    }

    /// The next message that matters, parsed in place (the hot path: no copy, no allocation).
    /// Notices, parameter changes and notifications are skipped; an error comes consumed and
    /// parsed, and a FATAL one, which ends the session, as the Err.
    async fn frame(&mut self) -> Result<In, WireError> {
        loop {
            let f = self.raw_frame().await?;
            match f.tag {
                b'N' | b'S' | b'A' => self.consume(f),
                b'E' => {
                    let e = db_error_fields(self.body(f));
                    self.consume(f);
                    if e.ends_session() {
                        // No ReadyForQuery follows: the server closes the connection.
                        self.closed = true;
                        return Err(WireError::Db(e));
                    }
                    return Ok(In::Error(e));
                }
                _ => return Ok(In::Msg(f)),
            }
        }
    }

    /// The next message that matters as postgres-protocol parses it (the paths off the
    /// transaction's: sign-in, Parse/Describe, COPY's start). Skipped and FATAL as `frame`.
    async fn read(&mut self) -> Result<Message, WireError> {
        loop {
            let f = self.raw_frame().await?;
            let mut one = BytesMut::from(&self.rbuf[..f.total()]);
            self.consume(f);
            match Message::parse(&mut one) {
                Ok(Some(Message::NoticeResponse(_)))
                | Ok(Some(Message::ParameterStatus(_)))
                | Ok(Some(Message::NotificationResponse(_))) => continue,
                Ok(Some(Message::ErrorResponse(body))) => {
                    let e = db_error(&body);
                    if e.ends_session() {
                        self.closed = true;
                        return Err(WireError::Db(e));
                    }
                    return Ok(Message::ErrorResponse(body));
                }
                Ok(Some(m)) => return Ok(m),
                Ok(None) => return Err(self.lose("a message cut short")),
                Err(e) => return Err(self.lose(e)),
            }
        }
    }

    /// The next message of a request's answer, up to its ReadyForQuery: None once that is
    /// read (consumed); errors on the way are kept in `error` (the first one). The message
    /// returned is the caller's to look at and then `consume`.
    async fn next_in_answer(
        &mut self,
        error: &mut Option<WireError>,
    ) -> Result<Option<Frame>, WireError> {
        loop {
            match self.frame().await? {
                In::Error(e) => {
                    error.get_or_insert(WireError::Db(e));
                }
                In::Msg(f) if f.tag == b'Z' => {
                    self.status = self.body(f).first().copied().unwrap_or(b'I');
                    self.consume(f);
                    return Ok(None);
                }
                In::Msg(f) => return Ok(Some(f)),
            }
        }
    }

    /// Read to the ReadyForQuery that ends a request, keeping the first error.
    async fn until_ready(&mut self, mut first: Option<WireError>) -> Result<(), WireError> {
        while let Some(f) = self.next_in_answer(&mut first).await? {
            self.consume(f);
        }
        first.map_or(Ok(()), Err)
    }

    /// Buffer a simple Query; an unsendable text (a NUL byte) leaves nothing half-written.
    pub(super) fn encode_query(&mut self, sql: &str) -> Result<(), WireError> {
        frontend::query(sql, &mut self.wbuf).map_err(|e| {
            self.wbuf.clear();
            WireError::Client(format!("cannot send the query: {e}"))
        })
    }

    /// Run SQL with the simple protocol (BEGIN, COMMIT, ROLLBACK, a check): the first column
    /// of the first row, as text, if it returned any.
    pub async fn simple(&mut self, sql: &str) -> Result<Option<String>, WireError> {
        self.encode_query(sql)?;
        self.flush().await?;
        let mut first = None;
        let mut error = None;
        while let Some(f) = self.next_in_answer(&mut error).await? {
            match f.tag {
                b'D' if first.is_none() => {
                    let mut text = None;
                    let mut keep = |_: usize, raw: Option<&[u8]>| {
                        if text.is_none() {
                            text = raw.map(|r| String::from_utf8_lossy(r).into_owned());
                        }
                    };
                    if let Err(why) = columns(self.body(f), &mut keep) {
                        return Err(self.lose(why));
                    }
                    first = Some(text);
                }
                // CopyInResponse, CopyOutResponse
                b'G' | b'H' => return Err(self.lose("COPY is not run as a simple query here")),
                _ => {}
            }
            self.consume(f);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(first.flatten()),
        }
    }
}

impl Drop for WireConn {
    /// Say goodbye (Terminate) if the socket takes it without waiting, so the server logs no
    /// "unexpected EOF".
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let bye = [b'X', 0, 0, 0, 4];
        match &self.io {
            Stream::Tcp(s) => {
                let _ = s.try_write(&bye);
            }
            #[cfg(unix)]
            Stream::Unix(s) => {
                let _ = s.try_write(&bye);
            }
            Stream::Tls(_) => {}
        }
    }
}

// A client's task moves between polls only within its thread, but JoinSet needs Send.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<WireConn>();
};
