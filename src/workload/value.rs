//! Parameter values: what generators produce and `RETURNING ... AS x` captures, bound to
//! whatever type the server inferred for the placeholder.

use bytes::{BufMut, BytesMut};
use postgres_types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type BoxError = Box<dyn Error + Sync + Send>;

/// One parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// Microseconds since the Unix epoch.
    Timestamp(i64),
}

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

impl Value {
    pub fn now() -> Value {
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_micros() as i64;
        Value::Timestamp(us)
    }

    fn as_i64(&self) -> Result<i64, BoxError> {
        match self {
            Value::Int(v) => Ok(*v),
            Value::Float(f) => Ok(f.round() as i64),
            Value::Bool(b) => Ok(*b as i64),
            Value::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not an integer").into()),
            Value::Timestamp(_) | Value::Null => Err("a timestamp cannot be an integer".into()),
        }
    }

    fn as_f64(&self) -> Result<f64, BoxError> {
        match self {
            Value::Int(v) => Ok(*v as f64),
            Value::Float(f) => Ok(*f),
            Value::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not a number").into()),
            _ => Err("not a number".into()),
        }
    }

    fn as_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(v) => v.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Timestamp(us) => us.to_string(),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *self == Value::Null {
            return Ok(IsNull::Yes);
        }
        match *ty {
            Type::INT2 => out.put_i16(i16::try_from(self.as_i64()?)?),
            Type::INT4 => out.put_i32(i32::try_from(self.as_i64()?)?),
            Type::INT8 => out.put_i64(self.as_i64()?),
            Type::OID => out.put_u32(u32::try_from(self.as_i64()?)?),
            Type::FLOAT4 => out.put_f32(self.as_f64()? as f32),
            Type::FLOAT8 => out.put_f64(self.as_f64()?),
            Type::NUMERIC => encode_numeric(&self.as_text(), out)?,
            Type::BOOL => out.put_u8(matches!(self, Value::Bool(true) | Value::Int(1)) as u8),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => match self {
                Value::Timestamp(us) => out.put_i64(us - PG_EPOCH_OFFSET_US),
                _ => return Err("only now() can be bound to a timestamp".into()),
            },
            _ => out.put_slice(self.as_text().as_bytes()),
        }
        Ok(IsNull::No)
    }

    accepts!(
        INT2,
        INT4,
        INT8,
        OID,
        FLOAT4,
        FLOAT8,
        NUMERIC,
        BOOL,
        TIMESTAMP,
        TIMESTAMPTZ,
        TEXT,
        VARCHAR,
        BPCHAR,
        NAME,
        UNKNOWN,
        JSON,
        JSONB
    );

    to_sql_checked!();
}

/// Types a parameter can be bound to (anything else needs a cast in SQL).
pub fn bindable(ty: &Type) -> bool {
    <Value as ToSql>::accepts(ty) && *ty != Type::JSONB && *ty != Type::JSON
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)? as i64),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)? as f64),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::Text(decode_numeric(raw)?),
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                Value::Timestamp(i64::from_sql(&Type::INT8, raw)? + PG_EPOCH_OFFSET_US)
            }
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
                | Type::BOOL
                | Type::TIMESTAMP
                | Type::TIMESTAMPTZ
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UUID
        )
    }
}

/// NUMERIC in PostgreSQL's binary format, from a decimal string such as "-12.5".
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
    if !(int_part.chars().all(|c| c.is_ascii_digit())
        && frac_part.chars().all(|c| c.is_ascii_digit()))
        || (int_part.is_empty() && frac_part.is_empty())
    {
        return Err(format!("'{text}' is not a number").into());
    }
    let int_part = int_part.trim_start_matches('0');
    // Base-10000 digits: integer part padded on the left, fraction on the right.
    let pad_left = (4 - int_part.len() % 4) % 4;
    let int_digits = format!("{}{}", "0".repeat(pad_left), int_part);
    let pad_right = (4 - frac_part.len() % 4) % 4;
    let frac_digits = format!("{}{}", frac_part, "0".repeat(pad_right));
    let mut digits: Vec<i16> = Vec::new();
    for chunk in int_digits
        .as_bytes()
        .chunks(4)
        .chain(frac_digits.as_bytes().chunks(4))
    {
        digits.push(std::str::from_utf8(chunk)?.parse()?);
    }
    let mut weight = (int_digits.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !digits.is_empty() { 0x4000 } else { 0 });
    out.put_u16(frac_part.len() as u16);
    for d in digits {
        out.put_i16(d);
    }
    Ok(())
}

/// NUMERIC from PostgreSQL's binary format to a decimal string.
fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let rd = |i: usize| -> Result<i16, BoxError> {
        raw.get(i..i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric".into())
    };
    let ndigits = rd(0)? as usize;
    let weight = rd(2)? as i32;
    let sign = rd(4)? as u16;
    let dscale = rd(6)? as usize;
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| rd(8 + 2 * i))
        .collect::<Result<_, _>>()?;
    let mut int = String::new();
    for w in 0..=weight.max(0) {
        let d = if w <= weight {
            digits.get(w as usize).copied().unwrap_or(0)
        } else {
            0
        };
        if int.is_empty() {
            if weight >= 0 {
                int.push_str(&d.to_string());
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < dscale {
        let d = if i >= 0 {
            digits.get(i as usize).copied().unwrap_or(0)
        } else {
            0
        };
        frac.push_str(&format!("{d:04}"));
        i += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if dscale > 0 {
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}{int}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> String {
        let mut b = BytesMut::new();
        encode_numeric(s, &mut b).unwrap();
        decode_numeric(&b).unwrap()
    }

    #[test]
    fn numeric_round_trips() {
        assert_eq!(round_trip("0"), "0");
        assert_eq!(round_trip("12345"), "12345");
        assert_eq!(round_trip("-12.5"), "-12.5");
        assert_eq!(round_trip("0.0001"), "0.0001");
        assert_eq!(round_trip("100000000"), "100000000");
        assert!(encode_numeric("1e5x", &mut BytesMut::new()).is_err());
    }
}
