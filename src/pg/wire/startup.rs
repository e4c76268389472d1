//! Opening a session: the startup message and the password exchange (cleartext, MD5 or
//! SCRAM-SHA-256), up to the first ReadyForQuery.

use super::error::WireError;
use super::parse::db_error;
use super::WireConn;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio_postgres::Config;

pub async fn startup(conn: &mut WireConn, config: &Config) -> Result<(), WireError> {
    let user = config
        .get_user()
        .ok_or_else(|| WireError::Client("no user to connect as".into()))?;
    let mut params = vec![("client_encoding", "UTF8"), ("user", user)];
    if let Some(db) = config.get_dbname() {
        params.push(("database", db));
    }
    if let Some(options) = config.get_options() {
        params.push(("options", options));
    }
    if let Some(app) = config.get_application_name() {
        params.push(("application_name", app));
    }
    frontend::startup_message(params, &mut conn.wbuf).map_err(WireError::lost)?;
    conn.flush().await?;
    let password = || {
        config.get_password().ok_or_else(|| {
            WireError::Client("the server asks for a password and none is set".into())
        })
    };
    let mut scram: Option<ScramSha256> = None;
    loop {
        match conn.read().await? {
            Message::AuthenticationOk => {}
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password()?, &mut conn.wbuf).map_err(WireError::lost)?;
                conn.flush().await?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(user.as_bytes(), password()?, body.salt());
                frontend::password_message(hash.as_bytes(), &mut conn.wbuf)
                    .map_err(WireError::lost)?;
                conn.flush().await?;
            }
            Message::AuthenticationSasl(body) => {
                let mut offered = body.mechanisms();
                let mut scram_offered = false;
                while let Some(m) = offered.next().map_err(WireError::lost)? {
                    scram_offered |= m == SCRAM_SHA_256;
                }
                if !scram_offered {
                    return Err(WireError::Client(
                        "the server offers no SASL mechanism this client speaks (SCRAM-SHA-256)"
                            .into(),
                    ));
                }
                let s = ScramSha256::new(password()?, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut conn.wbuf)
                    .map_err(WireError::lost)?;
                conn.flush().await?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| WireError::lost("SASL continue before SASL"))?;
                s.update(body.data())
                    .map_err(|e| WireError::Client(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut conn.wbuf).map_err(WireError::lost)?;
                conn.flush().await?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| WireError::lost("SASL final before SASL"))?;
                s.finish(body.data())
                    .map_err(|e| WireError::Client(format!("SCRAM: {e}")))?;
            }
            Message::BackendKeyData(_) => {}
            Message::ErrorResponse(body) => {
                conn.closed = true;
                return Err(WireError::Db(db_error(&body)));
            }
            Message::ReadyForQuery(_) => return Ok(()),
            _ => {
                conn.closed = true;
                return Err(WireError::lost(
                    "unexpected message while starting the session",
                ));
            }
        }
    }
}
