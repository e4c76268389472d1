//! Parameter values: what generators produce and `RETURNING ... AS x` captures, bound to
//! whatever type the server inferred for the placeholder.

use bytes::{BufMut, BytesMut};
use postgres_types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
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
    /// Microseconds since the Unix epoch (what `now()` generates).
    Timestamp(i64),
    /// A value captured from a result row as the server sent it (binary format), with its
    /// type: bound again unchanged to a parameter of the same type (uuid, numeric, timestamptz,
    /// bytea, jsonb, arrays, ...), or through its text form where it has one.
    Raw(Type, Vec<u8>),
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
            Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.round() as i64),
            Value::Float(f) => Err(format!("{f} is not an integer").into()),
            Value::Bool(b) => Ok(*b as i64),
            Value::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not an integer").into()),
            Value::Raw(..) => self.text_form()?.as_i64(),
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
            Value::Raw(..) => self.text_form()?.as_f64(),
            _ => Err("not a number".into()),
        }
    }

    fn as_text(&self) -> Result<String, BoxError> {
        Ok(match self {
            Value::Null => String::new(),
            Value::Int(v) => v.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Timestamp(us) => us.to_string(),
            Value::Raw(..) => return self.text_form()?.as_text(),
        })
    }

    /// A captured value as text, for the types whose text form is known here.
    fn text_form(&self) -> Result<Value, BoxError> {
        let Value::Raw(ty, raw) = self else {
            return Ok(self.clone());
        };
        let text = match *ty {
            Type::UUID if raw.len() == 16 => {
                let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
            }
            Type::NUMERIC => decode_numeric(raw)?,
            Type::JSONB if raw.first() == Some(&1) => String::from_utf8(raw[1..].to_vec())?,
            Type::JSON | Type::XML => String::from_utf8(raw.clone())?,
            _ => return Err(format!("a captured {ty} value has no text form here").into()),
        };
        Ok(Value::Text(text))
    }
}

/// Types whose binary formats are the same, so a captured value binds across them.
fn same_binary(a: &Type, b: &Type) -> bool {
    let ts = |t: &Type| *t == Type::TIMESTAMP || *t == Type::TIMESTAMPTZ;
    a == b || (ts(a) && ts(b))
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11` (hyphens optional) to its 16 bytes.
fn parse_uuid(text: &str) -> Result<[u8; 16], BoxError> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let bad = || -> BoxError { format!("'{text}' is not a uuid").into() };
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Raw(rty, raw) if same_binary(rty, ty) => {
                out.put_slice(raw);
                return Ok(IsNull::No);
            }
            Value::Raw(..) => return self.text_form()?.to_sql(ty, out),
            _ => {}
        }
        match *ty {
            Type::INT2 => out.put_i16(i16::try_from(self.as_i64()?)?),
            Type::INT4 => out.put_i32(i32::try_from(self.as_i64()?)?),
            Type::INT8 => out.put_i64(self.as_i64()?),
            Type::OID => out.put_u32(u32::try_from(self.as_i64()?)?),
            Type::FLOAT4 => out.put_f32(self.as_f64()? as f32),
            Type::FLOAT8 => out.put_f64(self.as_f64()?),
            Type::NUMERIC => encode_numeric(&self.as_text()?, out)?,
            Type::BOOL => out.put_u8(match self {
                Value::Bool(b) => *b as u8,
                Value::Int(0) => 0,
                Value::Int(1) => 1,
                Value::Text(t) if matches!(t.as_str(), "t" | "true") => 1,
                Value::Text(t) if matches!(t.as_str(), "f" | "false") => 0,
                other => return Err(format!("{other:?} is not a boolean").into()),
            }),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => match self {
                Value::Timestamp(us) => out.put_i64(us - PG_EPOCH_OFFSET_US),
                _ => return Err("only now() can be bound to a timestamp".into()),
            },
            Type::UUID => out.put_slice(&parse_uuid(&self.as_text()?)?),
            Type::BYTEA | Type::JSON => out.put_slice(self.as_text()?.as_bytes()),
            Type::JSONB => {
                out.put_u8(1);
                out.put_slice(self.as_text()?.as_bytes());
            }
            ref t if is_text(t) => out.put_slice(self.as_text()?.as_bytes()),
            ref t => {
                return Err(format!(
                    "cannot send a generated value as {t}: cast it in the SQL, e.g. $x::text::{t}"
                )
                .into())
            }
        }
        Ok(IsNull::No)
    }

    /// Every type: what cannot be sent is refused by `to_sql` with a message, and the
    /// preflight check finds it before the run.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
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
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            ref t if is_text(t) => Value::Text(String::from_utf8(raw.to_vec())?),
            _ => Value::Raw(ty.clone(), raw.to_vec()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
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

    fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, String> {
        let mut b = BytesMut::new();
        v.to_sql_checked(ty, &mut b).map_err(|e| e.to_string())?;
        Ok(b.to_vec())
    }

    #[test]
    fn captured_values_go_back_unchanged() {
        let uuid = [
            0xa0u8, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        let samples = [
            (Type::UUID, uuid.to_vec()),
            (Type::BYTEA, vec![0, 1, 2, 255]),
            (Type::JSONB, b"\x01{\"a\": 1}".to_vec()),
            (Type::TIMESTAMPTZ, 1234567i64.to_be_bytes().to_vec()),
            (Type::INT4_ARRAY, vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23]),
        ];
        for (ty, raw) in samples {
            let v = Value::from_sql(&ty, &raw).unwrap();
            assert_eq!(encode(&v, &ty).unwrap(), raw, "{ty}");
        }
        let v = Value::from_sql(&Type::UUID, &uuid).unwrap();
        assert_eq!(
            encode(&v, &Type::TEXT).unwrap(),
            b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        let n = Value::from_sql(&Type::NUMERIC, &{
            let mut b = BytesMut::new();
            encode_numeric("-12.5", &mut b).unwrap();
            b.to_vec()
        })
        .unwrap();
        assert_eq!(encode(&n, &Type::TEXT).unwrap(), b"-12.5");
        assert!(encode(&v, &Type::INT4).is_err(), "a uuid is no integer");
    }

    #[test]
    fn generated_values_fit_or_say_why() {
        assert!(encode(&Value::Int(3_000_000_000), &Type::INT4)
            .unwrap_err()
            .contains("out of range"));
        assert!(encode(&Value::Int(3_000_000_000), &Type::INT8).is_ok());
        assert!(encode(&Value::Text("abc".into()), &Type::NUMERIC).is_err());
        assert_eq!(
            encode(
                &Value::Text("a0eebc999c0b4ef8bb6d6bb9bd380a11".into()),
                &Type::UUID
            )
            .unwrap()
            .len(),
            16
        );
        assert!(encode(&Value::Int(1), &Type::INET)
            .unwrap_err()
            .contains("cast it in the SQL"));
        assert!(encode(&Value::Float(f64::NAN), &Type::INT8).is_err());
    }
}
