//! The extended protocol on a `WireConn`: statements prepared once per connection, Bind and
//! Execute buffered (one Sync per request, or one per pipeline), and the replies read in place.

use super::parse::{cstr, db_error, each_column, tag_count, type_of};
use super::*;

impl WireConn {
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

    pub(super) async fn prepare(&mut self, name: &str, text: &str) -> Result<Prepared, WireError> {
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
}
