//! The load's connections: PostgreSQL's protocol spoken directly on the client's own task.
//!
//! tokio-postgres drives each connection on a task of its own and hands every request and
//! reply across channels; for a load generator that is most of the client's CPU per
//! transaction (benches/README.md has the profile). A `WireConn` is owned by its client: the
//! client writes Bind/Execute/Sync into a buffer it reuses, sends it with one write, and reads
//! the reply itself. Messages are encoded and parsed by postgres-protocol (tokio-postgres's
//! own codec); parameters are bound with `ToSql` and columns read with `FromSql`, as before.
//! The tool's other connections (setup, checks, the sampler) stay on tokio-postgres.

mod error;
mod startup;
mod stream;

pub use error::{DbError, WireError};

use bytes::{Buf, BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
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

/// Send a CopyData message once this much is buffered.
const COPY_CHUNK: usize = 64 * 1024;

impl WireConn {
    /// Open a session (no timeout here: the caller bounds it).
    pub async fn connect(config: &Config) -> Result<WireConn, WireError> {
        let io = stream::open(config).await?;
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

    /// Statement `stmt` of transaction `tx`, prepared on first use.
    pub async fn statement(
        &mut self,
        tx: u16,
        stmt: u16,
        text: &str,
    ) -> Result<Arc<Prepared>, WireError> {
        if let Some((_, s)) = self.statements.iter().find(|(k, _)| *k == (tx, stmt)) {
            return Ok(s.clone());
        }
        let name = format!("s{tx}_{stmt}");
        let p = Arc::new(self.prepare(&name, text).await?);
        self.statements.push(((tx, stmt), p.clone()));
        Ok(p)
    }

    /// Prepare `text` under a name of its own (not cached here: the caller keeps it).
    pub async fn prepare_new(&mut self, text: &str) -> Result<Arc<Prepared>, WireError> {
        self.named += 1;
        let name = format!("p{}", self.named);
        Ok(Arc::new(self.prepare(&name, text).await?))
    }

    async fn prepare(&mut self, name: &str, text: &str) -> Result<Prepared, WireError> {
        let encode = |buf: &mut BytesMut| -> std::io::Result<()> {
            frontend::parse(name, text, std::iter::empty(), buf)?;
            frontend::describe(b'S', name, buf)?;
            frontend::sync(buf);
            Ok(())
        };
        if let Err(e) = encode(&mut self.wbuf) {
            self.wbuf.clear();
            return Err(WireError::Client(format!("cannot send the statement: {e}")));
        }
        self.flush().await?;
        let mut params = Vec::new();
        let mut columns = Vec::new();
        let mut error = None;
        loop {
            match self.read().await? {
                Message::ParseComplete | Message::NoData => {}
                Message::ParameterDescription(body) => {
                    let mut it = body.parameters();
                    while let Some(oid) = it.next().map_err(|e| self.lose(e))? {
                        params.push(type_of(oid));
                    }
                }
                Message::RowDescription(body) => {
                    let mut it = body.fields();
                    while let Some(f) = it.next().map_err(|e| self.lose(e))? {
                        columns.push(Column {
                            name: f.name().to_string(),
                            ty: type_of(f.type_oid()),
                        });
                    }
                }
                Message::ErrorResponse(body) => {
                    error.get_or_insert(WireError::Db(db_error(&body)));
                }
                Message::ReadyForQuery(_) => break,
                _ => return Err(self.lose("unexpected message after Parse")),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(Prepared {
                name: name.to_string(),
                params,
                columns,
            }),
        }
    }

    /// Buffer Bind/Execute/Sync of `st` with `params` (nothing is sent yet). A value that
    /// cannot be encoded refuses the whole buffer: nothing of it reaches the server.
    pub fn bind(&mut self, st: &Prepared, params: &[Param<'_>]) -> Result<(), WireError> {
        self.queue(st, params)?;
        self.sync();
        Ok(())
    }

    /// Buffer a Sync: the end of a pipeline. The server answers everything before it, and
    /// after an error skips the rest up to it.
    pub fn sync(&mut self) {
        frontend::sync(&mut self.wbuf);
    }

    /// Buffer Bind/Execute of `st` without a Sync (a pipeline: `sync` ends it, `result` reads
    /// each statement's answer, `ready` the end). Refused values as `bind`.
    pub fn queue(&mut self, st: &Prepared, params: &[Param<'_>]) -> Result<(), WireError> {
        if params.len() != st.params.len() {
            self.wbuf.clear();
            return Err(WireError::Client(format!(
                "expected {} parameters but got {}",
                st.params.len(),
                params.len()
            )));
        }
        let types = &st.params;
        let mut i = 0;
        let r = frontend::bind(
            "",
            &st.name,
            std::iter::once(1i16),
            params.iter(),
            |p, buf| {
                let ty = &types[i];
                i += 1;
                match p.to_sql_checked(ty, buf)? {
                    IsNull::Yes => Ok(WireNull::Yes),
                    IsNull::No => Ok(WireNull::No),
                }
            },
            std::iter::once(1i16),
            &mut self.wbuf,
        );
        if let Err(e) = r {
            self.wbuf.clear();
            let why = match e {
                frontend::BindError::Conversion(e) => e.to_string(),
                frontend::BindError::Serialization(e) => e.to_string(),
            };
            return Err(WireError::Client(format!(
                "error serializing parameter {}: {why}",
                i.max(1) - 1
            )));
        }
        frontend::execute("", 0, &mut self.wbuf).map_err(|e| WireError::Client(e.to_string()))?;
        Ok(())
    }

    /// Buffer a simple Query; an unsendable text (a NUL byte) leaves nothing half-written.
    fn encode_query(&mut self, sql: &str) -> Result<(), WireError> {
        frontend::query(sql, &mut self.wbuf).map_err(|e| {
            self.wbuf.clear();
            WireError::Client(format!("cannot send the query: {e}"))
        })
    }

    /// Send what `bind` buffered.
    pub async fn send(&mut self) -> Result<(), WireError> {
        self.flush().await
    }

    /// Read the reply to one bound statement, to its ReadyForQuery: its row count (rows
    /// returned, or affected when it returns none). `first_row` sees the first row's columns,
    /// raw (binary, None for NULL).
    pub async fn reply(
        &mut self,
        st: &Prepared,
        first_row: Option<&mut RowFn<'_>>,
    ) -> Result<u64, WireError> {
        let result = self.result(st, first_row).await;
        if self.closed {
            return result;
        }
        let ready = self.ready().await;
        let n = result?;
        ready.map(|_| n)
    }

    /// Read one statement's answer in a pipeline, up to its CommandComplete (not to the
    /// ReadyForQuery: `ready` reads that). An error is this statement's; the server answers
    /// nothing more before the Sync.
    pub async fn result(
        &mut self,
        st: &Prepared,
        mut first_row: Option<&mut RowFn<'_>>,
    ) -> Result<u64, WireError> {
        let mut rows = 0u64;
        loop {
            let f = match self.frame().await? {
                In::Msg(f) => f,
                In::Error(e) => return Err(WireError::Db(e)),
            };
            match f.tag {
                // BindComplete
                b'2' => {}
                // DataRow
                b'D' => {
                    if rows == 0 {
                        if let Some(cb) = first_row.as_mut() {
                            if let Err(why) = each_column(self.body(f), &st.columns, cb) {
                                return Err(self.lose(why));
                            }
                        }
                    }
                    rows += 1;
                }
                // CommandComplete: the tag's count matters only for a statement that returns
                // no rows.
                b'C' => {
                    let affected = tag_count(cstr(self.body(f))).unwrap_or(0);
                    self.consume(f);
                    return Ok(if st.columns.is_empty() {
                        affected
                    } else {
                        rows
                    });
                }
                // EmptyQueryResponse
                b'I' => {
                    self.consume(f);
                    return Ok(0);
                }
                _ => return Err(self.lose("unexpected message in a statement's reply")),
            }
            self.consume(f);
        }
    }

    /// Read to the ReadyForQuery that answers a Sync: the transaction status it reports
    /// (`I` idle, `T` in a transaction, `E` in a failed one).
    pub async fn ready(&mut self) -> Result<u8, WireError> {
        let mut error = None;
        while let Some(f) = self.next_in_answer(&mut error).await? {
            self.consume(f);
        }
        error.map_or(Ok(self.status), Err)
    }

    /// Bind, send and read one statement.
    pub async fn execute(
        &mut self,
        st: &Prepared,
        params: &[Param<'_>],
        first_row: Option<&mut RowFn<'_>>,
    ) -> Result<u64, WireError> {
        self.bind(st, params)?;
        self.flush().await?;
        self.reply(st, first_row).await
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

    /// Column types of a COPY target, looked up once per connection.
    pub async fn copy_types(
        &mut self,
        tx: u16,
        table: &str,
        columns: &[String],
    ) -> Result<Arc<Vec<Type>>, WireError> {
        if let Some(t) = self.copy_types.get(&tx) {
            return Ok(t.clone());
        }
        let probe = format!("SELECT {} FROM {table} LIMIT 0", columns.join(", "));
        let p = self.prepare("", &probe).await?;
        let types = Arc::new(p.columns.into_iter().map(|c| c.ty).collect::<Vec<_>>());
        self.copy_types.insert(tx, types.clone());
        Ok(types)
    }

    /// Start `COPY ... FROM STDIN (FORMAT binary)`: rows follow with `copy_row`.
    pub async fn copy_in(&mut self, sql: &str) -> Result<(), WireError> {
        self.encode_query(sql)?;
        self.flush().await?;
        match self.read().await? {
            Message::CopyInResponse(_) => {}
            Message::ErrorResponse(body) => {
                let e = WireError::Db(db_error(&body));
                return self.until_ready(Some(e)).await.map(|_| ());
            }
            _ => return Err(self.lose("expected CopyInResponse")),
        }
        self.open_copy_data();
        // The binary COPY header: signature, flags, no extension.
        self.wbuf.put_slice(b"PGCOPY\n\xff\r\n\0");
        self.wbuf.put_i32(0);
        self.wbuf.put_i32(0);
        Ok(())
    }

    fn open_copy_data(&mut self) {
        self.copy_at = Some(self.wbuf.len());
        self.wbuf.put_u8(b'd');
        self.wbuf.put_i32(0);
    }

    /// Close the CopyData message being filled: write its length.
    fn close_copy_data(&mut self) {
        if let Some(at) = self.copy_at.take() {
            let len = (self.wbuf.len() - at - 1) as i32;
            self.wbuf[at + 1..at + 5].copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Buffer one row (sent in chunks of COPY_CHUNK). A value that cannot be encoded fails
    /// the COPY: CopyFail is sent and the server's answer read.
    pub async fn copy_row<T: ToSql + Sync>(
        &mut self,
        types: &[Type],
        row: &[T],
    ) -> Result<(), WireError> {
        let start = self.wbuf.len();
        self.wbuf.put_i16(row.len() as i16);
        for (i, (v, ty)) in row.iter().zip(types).enumerate() {
            let at = self.wbuf.len();
            self.wbuf.put_i32(0);
            match v.to_sql_checked(ty, &mut self.wbuf) {
                Ok(IsNull::No) => {
                    let len = (self.wbuf.len() - at - 4) as i32;
                    self.wbuf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                Ok(IsNull::Yes) => self.wbuf[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes()),
                Err(e) => {
                    self.wbuf.truncate(start);
                    let why = format!("error serializing column {i}: {e}");
                    self.close_copy_data();
                    frontend::copy_fail(&why, &mut self.wbuf).map_err(WireError::lost)?;
                    self.flush().await?;
                    let _ = self.until_ready(None).await;
                    return Err(WireError::Client(why));
                }
            }
        }
        if self.wbuf.len() >= COPY_CHUNK {
            self.close_copy_data();
            self.flush().await?;
            self.open_copy_data();
        }
        Ok(())
    }

    /// End the COPY: the rows the server says it copied.
    pub async fn copy_finish(&mut self) -> Result<u64, WireError> {
        self.wbuf.put_i16(-1);
        self.close_copy_data();
        frontend::copy_done(&mut self.wbuf);
        self.flush().await?;
        let mut copied = 0;
        let mut error = None;
        while let Some(f) = self.next_in_answer(&mut error).await? {
            if f.tag == b'C' {
                copied = tag_count(cstr(self.body(f))).unwrap_or(0);
            }
            self.consume(f);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(copied),
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

/// The fields of an ErrorResponse.
fn db_error(body: &ErrorResponseBody) -> DbError {
    let mut e = DbError::default();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        set_field(&mut e, f.type_(), f.value_bytes());
    }
    e
}

/// One field of an ErrorResponse into the error.
fn set_field(e: &mut DbError, kind: u8, value: &[u8]) {
    let v = String::from_utf8_lossy(value).into_owned();
    match kind {
        b'V' => e.severity = v,
        b'S' if e.severity.is_empty() => e.severity = v,
        b'C' => e.code = v,
        b'M' => e.message = v,
        b'D' => e.detail = Some(v),
        b'H' => e.hint = Some(v),
        _ => {}
    }
}

/// The fields of an ErrorResponse's body (type byte, NUL-terminated value; a 0 ends them).
fn db_error_fields(mut body: &[u8]) -> DbError {
    let mut e = DbError::default();
    while let Some((&kind, rest)) = body.split_first() {
        if kind == 0 {
            break;
        }
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        set_field(&mut e, kind, &rest[..end]);
        body = rest.get(end + 1..).unwrap_or_default();
    }
    e
}

/// A message's leading NUL-terminated text (a command tag), "" if it is not UTF-8.
fn cstr(body: &[u8]) -> &str {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    std::str::from_utf8(&body[..end]).unwrap_or_default()
}

/// Walk a DataRow's columns: `f` gets each column's index and raw value (None for NULL).
fn columns(body: &[u8], f: &mut dyn FnMut(usize, Option<&[u8]>)) -> Result<(), &'static str> {
    let bad = "a malformed DataRow";
    let count = body.get(..2).ok_or(bad)?;
    let count = u16::from_be_bytes([count[0], count[1]]) as usize;
    let mut at = 2;
    for i in 0..count {
        let len = body.get(at..at + 4).ok_or(bad)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len < 0 {
            f(i, None);
        } else {
            let value = body.get(at..at + len as usize).ok_or(bad)?;
            at += len as usize;
            f(i, Some(value));
        }
    }
    Ok(())
}

/// A DataRow's columns as `first_row` wants them: each with its description.
fn each_column(body: &[u8], cols: &[Column], cb: &mut RowFn<'_>) -> Result<(), &'static str> {
    columns(body, &mut |i, raw| {
        if let Some(col) = cols.get(i) {
            cb(col, raw);
        }
    })
}

/// The count at the end of a command tag ("INSERT 0 1", "UPDATE 3", "COPY 1000", "SELECT 1").
fn tag_count(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next()?.parse().ok()
}

/// A type by its OID: the built-in ones by name, any other as an unnamed simple type (the
/// load binds only built-in types; others are refused with a message by `Value::to_sql`).
fn type_of(oid: u32) -> Type {
    Type::from_oid(oid)
        .unwrap_or_else(|| Type::new(format!("oid {oid}"), oid, Kind::Simple, "pg_catalog".into()))
}

// A client's task moves between polls only within its thread, but JoinSet needs Send.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<WireConn>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tags_give_their_counts() {
        assert_eq!(tag_count("INSERT 0 1"), Some(1));
        assert_eq!(tag_count("UPDATE 3"), Some(3));
        assert_eq!(tag_count("COPY 1000000"), Some(1_000_000));
        assert_eq!(tag_count("BEGIN"), None);
    }

    #[test]
    fn error_fields_parse_in_place() {
        let body = b"SERROR\0VERROR\0C23505\0Mduplicate key\0Dkey (id)=(1)\0\0";
        let e = db_error_fields(body);
        assert_eq!(
            (e.severity.as_str(), e.code.as_str(), e.message.as_str()),
            ("ERROR", "23505", "duplicate key")
        );
        assert_eq!(e.detail.as_deref(), Some("key (id)=(1)"));
        // Cut short: what is there, no panic.
        assert_eq!(db_error_fields(b"C4000").code, "4000");
    }

    #[test]
    fn data_rows_walk_their_columns() {
        // Two columns: "42" and NULL.
        let body = [0, 2, 0, 0, 0, 2, b'4', b'2', 255, 255, 255, 255];
        let mut seen = Vec::new();
        columns(&body, &mut |i, raw| seen.push((i, raw.map(<[u8]>::to_vec)))).expect("well formed");
        assert_eq!(seen, vec![(0, Some(b"42".to_vec())), (1, None)]);
        // A length past the end is refused, not read.
        assert!(columns(&[0, 1, 0, 0, 0, 9, b'x'], &mut |_, _| {}).is_err());
        assert_eq!(cstr(b"INSERT 0 1\0"), "INSERT 0 1");
    }

    #[test]
    fn unknown_types_keep_their_oid() {
        assert_eq!(type_of(23), Type::INT4);
        assert_eq!(type_of(987_654).oid(), 987_654);
    }
}
