//! COPY FROM STDIN in binary on a `WireConn`: rows encoded straight into the write buffer and
//! sent in CopyData chunks.

use super::parse::{cstr, db_error, tag_count};
use super::*;

/// Send a CopyData message once this much is buffered.
const COPY_CHUNK: usize = 64 * 1024;

impl WireConn {
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
