//! Backend messages read in place: ErrorResponse fields, DataRow columns, command tags and
//! type OIDs, from the bytes of the read buffer without copying them.

use super::*;

/// The fields of an ErrorResponse.
pub(super) fn db_error(body: &ErrorResponseBody) -> DbError {
    let mut e = DbError::default();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        set_field(&mut e, f.type_(), f.value_bytes());
    }
    e
}

/// One field of an ErrorResponse into the error.
pub(super) fn set_field(e: &mut DbError, kind: u8, value: &[u8]) {
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
pub(super) fn db_error_fields(mut body: &[u8]) -> DbError {
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
pub(super) fn cstr(body: &[u8]) -> &str {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    std::str::from_utf8(&body[..end]).unwrap_or_default()
}

/// Walk a DataRow's columns: `f` gets each column's index and raw value (None for NULL).
pub(super) fn columns(
    body: &[u8],
    f: &mut dyn FnMut(usize, Option<&[u8]>),
) -> Result<(), &'static str> {
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
pub(super) fn each_column(
    body: &[u8],
    cols: &[Column],
    cb: &mut RowFn<'_>,
) -> Result<(), &'static str> {
    columns(body, &mut |i, raw| {
        if let Some(col) = cols.get(i) {
            cb(col, raw);
        }
    })
}

/// The count at the end of a command tag ("INSERT 0 1", "UPDATE 3", "COPY 1000", "SELECT 1").
pub(super) fn tag_count(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next()?.parse().ok()
}

/// A type by its OID: the built-in ones by name, any other as an unnamed simple type (the
/// load binds only built-in types; others are refused with a message by `Value::to_sql`).
pub(super) fn type_of(oid: u32) -> Type {
    Type::from_oid(oid)
        .unwrap_or_else(|| Type::new(format!("oid {oid}"), oid, Kind::Simple, "pg_catalog".into()))
}

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
