//! Secrets at rest: AES-256-GCM envelope encryption, and the SQL that
//! stores and resolves them.
//!
//! - Each value is sealed with a fresh 256-bit data key (DEK); the DEK is
//!   sealed ("wrapped") with the current key-encryption key (KEK) of the
//!   [`Keyring`], whose id is stored beside it. Rotation: put the new KEK
//!   first and the old ones in `previous`; [`rewrap`] moves every DEK to the
//!   current KEK without touching the values, and reads keep working
//!   meanwhile.
//! - Both layers authenticate `(project_id, name)` as associated data, so a
//!   row copied to another project or renamed does not decrypt.
//! - Plaintext lives in [`SecretValue`] (zeroized on drop, redacted in
//!   `Debug`); key bytes never appear in `Debug` output or errors.
//! - Every decryption for a run writes a `secret.decrypt` row to the audit
//!   log (who: a worker; what: the secret's id and name; never its value).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The id a KEK gets when `MESHHOOK_KEK` carries no `id:` prefix.
pub const DEFAULT_KEK_ID: &str = "default";

/// What can go wrong with secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A referenced secret does not exist in the project.
    #[error("secret `{0}` is not defined")]
    Missing(String),
    /// A secret name outside `[A-Za-z_][A-Za-z0-9_]{0,127}`.
    #[error(
        "`{0}` is not a valid secret name (letters, digits and `_`, not starting with a digit, at most 128 characters)"
    )]
    InvalidName(String),
    /// A KEK specification that does not parse (the message never holds key bytes).
    #[error("invalid key-encryption key: {0}")]
    InvalidKey(String),
    /// The stored value was sealed under a KEK this keyring does not hold.
    #[error(
        "secret `{name}` is sealed with key `{kek_id}`, which is not configured (add it to the previous keys)"
    )]
    UnknownKek {
        /// The secret's name.
        name: String,
        /// The KEK it needs.
        kek_id: String,
    },
    /// Authentication failed: wrong key, or the row was altered or moved.
    #[error("secret `{0}` does not decrypt (wrong key, or the stored row was altered)")]
    Undecryptable(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Db(e.into())
    }
}

/// One key-encryption key.
struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    fn parse(spec: &str) -> Result<Self, Error> {
        let spec = spec.trim();
        // Standard base64 has no `:`, so the first one separates the id.
        let (id, b64) = match spec.split_once(':') {
            Some((id, b64)) => (id.trim(), b64.trim()),
            None => (DEFAULT_KEK_ID, spec),
        };
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Error::InvalidKey(format!(
                "key id `{id}` must be 1-64 characters of letters, digits, `_`, `-` or `.`"
            )));
        }
        let bytes = Zeroizing::new(
            B64.decode(b64)
                .map_err(|_| Error::InvalidKey(format!("key `{id}` is not valid base64")))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::InvalidKey(format!(
                "key `{id}` must decode to 32 bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(Kek {
            id: id.to_owned(),
            key: Zeroizing::new(key),
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        cipher(self.key.as_slice())
    }
}

/// The key-encryption keys: the current one (seals) and older ones (still
/// open what they sealed until [`rewrap`] has moved it).
pub struct Keyring {
    current: Kek,
    previous: Vec<Kek>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Parses `MESHHOOK_KEK`-style specs: `id:base64key` or a bare
    /// `base64key` (id `default`), 32 bytes each. Ids must be distinct.
    pub fn parse(current: &str, previous: &[&str]) -> Result<Self, Error> {
        let current = Kek::parse(current)?;
        let mut ids = BTreeSet::from([current.id.clone()]);
        let mut older = Vec::with_capacity(previous.len());
        for spec in previous {
            let k = Kek::parse(spec)?;
            if !ids.insert(k.id.clone()) {
                return Err(Error::InvalidKey(format!(
                    "key id `{}` is used twice; give each key its own id (`id:base64key`)",
                    k.id
                )));
            }
            older.push(k);
        }
        Ok(Keyring {
            current,
            previous: older,
        })
    }

    /// A fresh random key spec (`default:<base64>`), e.g. for `meshhook dev`
    /// to generate and keep under its data directory.
    pub fn generate_spec() -> Zeroizing<String> {
        let key = fresh_key();
        Zeroizing::new(format!("{DEFAULT_KEK_ID}:{}", B64.encode(key.as_slice())))
    }

    /// The id of the KEK new secrets are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    fn get(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// A sealed value, as stored (columns of `meshhook.secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The value under the data key.
    pub ciphertext: Vec<u8>,
    /// The value's nonce (12 bytes).
    pub nonce: Vec<u8>,
    /// The data key under the KEK.
    pub wrapped_dek: Vec<u8>,
    /// The data key's nonce (12 bytes).
    pub dek_nonce: Vec<u8>,
    /// Which KEK wrapped the data key.
    pub kek_id: String,
}

/// A decrypted value: zeroized on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps a plaintext.
    pub fn new(value: String) -> Self {
        SecretValue(Zeroizing::new(value))
    }

    /// The plaintext. Keep it out of logs, errors and events.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Decrypted secrets by name (`Debug` shows the names only).
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, SecretValue>);

impl Secrets {
    /// The value of `name`, if resolved.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.0.get(name)
    }

    /// The resolved values, e.g. to scrub them from text that came back.
    pub fn values(&self) -> impl Iterator<Item = &SecretValue> {
        self.0.values()
    }

    /// Whether none were resolved.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A fresh random 256-bit key.
fn fresh_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut_slice());
    key
}

/// An AES-256-GCM cipher; `key` is 32 bytes by construction everywhere.
fn cipher(key: &[u8]) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(key).expect("keys are 32 bytes by construction")
}

/// Associated data of both layers: binds the ciphertexts to their row.
fn aad(layer: &str, project_id: Uuid, name: &str) -> Vec<u8> {
    format!("meshhook/{layer}/v1\0{project_id}\0{name}").into_bytes()
}

fn encrypt(cipher: &Aes256Gcm, msg: &[u8], aad: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ct = cipher
        .encrypt(&nonce, Payload { msg, aad })
        .expect("AES-GCM encryption cannot fail for inputs under 64 GiB");
    (ct, nonce.to_vec())
}

fn decrypt(cipher: &Aes256Gcm, ct: &[u8], nonce: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    cipher
        .decrypt(
            &aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload { msg: ct, aad },
        )
        .ok()
}

/// Seals `plaintext` as secret `name` of `project_id` under a fresh data key
/// wrapped by the keyring's current KEK.
pub fn seal(keyring: &Keyring, project_id: Uuid, name: &str, plaintext: &[u8]) -> Sealed {
    let dek = fresh_key();
    let (ciphertext, nonce) = encrypt(
        &cipher(dek.as_slice()),
        plaintext,
        &aad("value", project_id, name),
    );
    let (wrapped_dek, dek_nonce) = encrypt(
        &keyring.current.cipher(),
        dek.as_slice(),
        &aad("dek", project_id, name),
    );
    Sealed {
        ciphertext,
        nonce,
        wrapped_dek,
        dek_nonce,
        kek_id: keyring.current.id.clone(),
    }
}

fn unwrap_dek(
    keyring: &Keyring,
    project_id: Uuid,
    name: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let kek = keyring
        .get(&sealed.kek_id)
        .ok_or_else(|| Error::UnknownKek {
            name: name.to_owned(),
            kek_id: sealed.kek_id.clone(),
        })?;
    let dek = decrypt(
        &kek.cipher(),
        &sealed.wrapped_dek,
        &sealed.dek_nonce,
        &aad("dek", project_id, name),
    )
    .map(Zeroizing::new)
    .ok_or_else(|| Error::Undecryptable(name.to_owned()))?;
    if dek.len() != 32 {
        return Err(Error::Undecryptable(name.to_owned()));
    }
    Ok(dek)
}

/// Opens what [`seal`] sealed for the same `project_id` and `name`.
pub fn open(
    keyring: &Keyring,
    project_id: Uuid,
    name: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let dek = unwrap_dek(keyring, project_id, name, sealed)?;
    decrypt(
        &cipher(&dek),
        &sealed.ciphertext,
        &sealed.nonce,
        &aad("value", project_id, name),
    )
    .map(Zeroizing::new)
    .ok_or_else(|| Error::Undecryptable(name.to_owned()))
}

/// Re-wraps the data key under the keyring's current KEK (the value's
/// ciphertext is untouched).
pub fn rewrap_sealed(
    keyring: &Keyring,
    project_id: Uuid,
    name: &str,
    sealed: &Sealed,
) -> Result<Sealed, Error> {
    let dek = unwrap_dek(keyring, project_id, name, sealed)?;
    let (wrapped_dek, dek_nonce) = encrypt(
        &keyring.current.cipher(),
        &dek,
        &aad("dek", project_id, name),
    );
    Ok(Sealed {
        wrapped_dek,
        dek_nonce,
        kek_id: keyring.current.id.clone(),
        ..sealed.clone()
    })
}

/// The masked form shown in lists: `…` plus the last 4 characters, after a
/// short type prefix such as `sk_` when there is one, for values of at least
/// 12 characters; `••••` for shorter ones.
pub fn hint(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "••••".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    let letters = chars.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let prefix = match chars.get(letters) {
        Some('_' | '-') if (2..=4).contains(&letters) => chars[..=letters].iter().collect(),
        _ => String::new(),
    };
    format!("{prefix}…{tail}")
}

fn check_name(name: &str) -> Result<(), Error> {
    if meshhook_core::template::is_secret_name(name) && name.len() <= 128 {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// Creates or replaces secret `name` of `project_id`. Returns its id.
/// The caller writes the `secret.create`/`secret.update` audit row (it knows
/// the actor's address and agent).
pub async fn put_secret(
    conn: &mut PgConnection,
    project_id: Uuid,
    name: &str,
    value: &str,
    keyring: &Keyring,
    actor: Option<Uuid>,
) -> Result<Uuid, Error> {
    check_name(name)?;
    let s = seal(keyring, project_id, name, value.as_bytes());
    Ok(sqlx::query_scalar(
        "INSERT INTO meshhook.secrets (project_id, name, ciphertext, nonce, wrapped_dek, dek_nonce, kek_id, hint, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (project_id, name) DO UPDATE
         SET ciphertext = EXCLUDED.ciphertext, nonce = EXCLUDED.nonce, wrapped_dek = EXCLUDED.wrapped_dek,
             dek_nonce = EXCLUDED.dek_nonce, kek_id = EXCLUDED.kek_id, hint = EXCLUDED.hint, updated_at = now()
         RETURNING id",
    )
    .bind(project_id)
    .bind(name)
    .bind(&s.ciphertext)
    .bind(&s.nonce)
    .bind(&s.wrapped_dek)
    .bind(&s.dek_nonce)
    .bind(&s.kek_id)
    .bind(hint(value))
    .bind(actor)
    .fetch_one(conn)
    .await?)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    wrapped_dek: Vec<u8>,
    dek_nonce: Vec<u8>,
    kek_id: String,
}

impl Row {
    fn sealed(self) -> (Uuid, String, Sealed) {
        (
            self.id,
            self.name,
            Sealed {
                ciphertext: self.ciphertext,
                nonce: self.nonce,
                wrapped_dek: self.wrapped_dek,
                dek_nonce: self.dek_nonce,
                kek_id: self.kek_id,
            },
        )
    }
}

/// Decrypts the named secrets of `project_id` for a worker, writing one
/// `secret.decrypt` audit row per secret (`details: {run_id, name}`).
/// Fails with [`Error::Missing`] (the first missing name, alphabetically)
/// before decrypting anything if one does not exist.
pub async fn resolve<I>(
    conn: &mut PgConnection,
    project_id: Uuid,
    names: I,
    keyring: &Keyring,
    run_id: Option<Uuid>,
) -> Result<Secrets, Error>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let wanted: BTreeSet<String> = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
    if wanted.is_empty() {
        return Ok(Secrets::default());
    }
    let list: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, ciphertext, nonce, wrapped_dek, dek_nonce, kek_id
         FROM meshhook.secrets WHERE project_id = $1 AND name = ANY($2)",
    )
    .bind(project_id)
    .bind(&list)
    .fetch_all(&mut *conn)
    .await?;
    if let Some(missing) = wanted.iter().find(|n| !rows.iter().any(|r| &r.name == *n)) {
        return Err(Error::Missing(missing.clone()));
    }
    let mut out = BTreeMap::new();
    let mut ids = Vec::with_capacity(rows.len());
    let mut details = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, name, sealed) = row.sealed();
        let plain = open(keyring, project_id, &name, &sealed)?;
        let text =
            String::from_utf8(plain.to_vec()).map_err(|_| Error::Undecryptable(name.clone()))?;
        ids.push(id.to_string());
        details.push(json!({ "run_id": run_id, "name": name }));
        out.insert(name, SecretValue::new(text));
    }
    sqlx::query(
        "INSERT INTO meshhook.audit_log (project_id, actor_kind, action, target_type, target_id, details)
         SELECT $1, 'worker', 'secret.decrypt', 'secret', u.id, u.d
         FROM unnest($2::text[], $3::jsonb[]) AS u(id, d)",
    )
    .bind(project_id)
    .bind(&ids)
    .bind(&details)
    .execute(&mut *conn)
    .await?;
    Ok(Secrets(out))
}

/// What [`rewrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Rows moved to the current KEK.
    pub moved: u64,
    /// Ids of rows that did not open (unknown KEK, or altered): left as
    /// they were, for an operator to look at.
    pub unreadable: Vec<Uuid>,
}

/// Re-wraps every data key not under the keyring's current KEK (after a
/// rotation): project secrets, alert rules' signing secrets and webhooks'
/// signing keys. In batches, each row updated only if nobody replaced it
/// meanwhile. Safe to run while workers read secrets.
pub async fn rewrap(conn: &mut PgConnection, keyring: &Keyring) -> Result<Rewrapped, Error> {
    let mut report = rewrap_rows(conn, keyring, SealedRows::Secrets).await?;
    let alerts = rewrap_rows(conn, keyring, SealedRows::AlertRules).await?;
    let hooks = rewrap_webhook_keys(conn, keyring).await?;
    for r in [alerts, hooks] {
        report.moved += r.moved;
        report.unreadable.extend(r.unreadable);
    }
    Ok(report)
}

/// [`rewrap`] for webhooks' signing keys: `signing_keys` is a JSON array
/// of sealed entries (`kek_id`, base64 `wrapped_dek` and `dek_nonce`, ...;
/// sealed as `webhook:<id>`); each entry under another KEK is re-wrapped,
/// the rest of the entry kept as it is.
async fn rewrap_webhook_keys(
    conn: &mut PgConnection,
    keyring: &Keyring,
) -> Result<Rewrapped, Error> {
    let mut report = Rewrapped::default();
    let mut after = Uuid::nil();
    loop {
        let batch: Vec<(Uuid, Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT id, project_id, signing_keys FROM meshhook.webhooks
             WHERE id > $2 AND EXISTS (SELECT 1 FROM jsonb_array_elements(signing_keys) k
                                       WHERE k ->> 'kek_id' <> $1)
             ORDER BY id LIMIT 100",
        )
        .bind(keyring.current_id())
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = batch.last() else {
            return Ok(report);
        };
        after = last.0;
        for (id, project_id, keys) in batch {
            let name = format!("webhook:{id}");
            let mut new_keys = keys.clone();
            let mut moved = 0;
            let mut readable = true;
            for entry in new_keys.as_array_mut().into_iter().flatten() {
                match rewrap_entry(keyring, project_id, &name, entry) {
                    Ok(true) => moved += 1,
                    Ok(false) => {}
                    Err(Error::UnknownKek { .. } | Error::Undecryptable(_)) => readable = false,
                    Err(e) => return Err(e),
                }
            }
            if !readable {
                report.unreadable.push(id);
            }
            if moved == 0 {
                continue;
            }
            let r = sqlx::query(
                "UPDATE meshhook.webhooks SET signing_keys = $2 WHERE id = $1 AND signing_keys = $3",
            )
            .bind(id)
            .bind(&new_keys)
            .bind(&keys)
            .execute(&mut *conn)
            .await?;
            report.moved += r.rows_affected() * moved;
        }
    }
}

/// Re-wraps one sealed JSON entry in place if it is under another KEK;
/// `Ok(true)` when it moved.
fn rewrap_entry(
    keyring: &Keyring,
    project_id: Uuid,
    name: &str,
    entry: &mut serde_json::Value,
) -> Result<bool, Error> {
    let field = |entry: &serde_json::Value, key: &str| -> Result<String, Error> {
        entry
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Undecryptable(format!("a signing key lacks `{key}`")))
    };
    let kek_id = field(entry, "kek_id")?;
    if kek_id == keyring.current_id() {
        return Ok(false);
    }
    let bytes = |key: &str| -> Result<Vec<u8>, Error> {
        B64.decode(field(entry, key)?)
            .map_err(|_| Error::Undecryptable(format!("a signing key's `{key}` is not base64")))
    };
    let sealed = Sealed {
        ciphertext: Vec::new(),
        nonce: Vec::new(),
        wrapped_dek: bytes("wrapped_dek")?,
        dek_nonce: bytes("dek_nonce")?,
        kek_id,
    };
    let new = rewrap_sealed(keyring, project_id, name, &sealed)?;
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("wrapped_dek".into(), B64.encode(&new.wrapped_dek).into());
        obj.insert("dek_nonce".into(), B64.encode(&new.dek_nonce).into());
        obj.insert("kek_id".into(), new.kek_id.into());
    }
    Ok(true)
}

/// A table whose rows each hold one sealed data key, with the queries
/// that read and move them (constant SQL, one pair per table).
#[derive(Clone, Copy)]
enum SealedRows {
    /// Project secrets, sealed under their own name.
    Secrets,
    /// Alert rules' signing secrets, sealed as `alert-rule:<id>`.
    AlertRules,
}

impl SealedRows {
    fn select(self) -> &'static str {
        match self {
            Self::Secrets => {
                "SELECT id, project_id, name, wrapped_dek, dek_nonce, kek_id FROM meshhook.secrets
                 WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT 100"
            }
            Self::AlertRules => {
                "SELECT id, project_id, 'alert-rule:' || id::text AS name, wrapped_dek, dek_nonce, kek_id
                 FROM meshhook.alert_rules
                 WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT 100"
            }
        }
    }

    fn update(self) -> &'static str {
        match self {
            Self::Secrets => {
                "UPDATE meshhook.secrets SET wrapped_dek = $2, dek_nonce = $3, kek_id = $4
                 WHERE id = $1 AND kek_id = $5 AND wrapped_dek = $6"
            }
            Self::AlertRules => {
                "UPDATE meshhook.alert_rules SET wrapped_dek = $2, dek_nonce = $3, kek_id = $4
                 WHERE id = $1 AND kek_id = $5 AND wrapped_dek = $6"
            }
        }
    }
}

/// [`rewrap`] for one table of [`SealedRows`].
async fn rewrap_rows(
    conn: &mut PgConnection,
    keyring: &Keyring,
    table: SealedRows,
) -> Result<Rewrapped, Error> {
    #[derive(sqlx::FromRow)]
    struct Wrapped {
        id: Uuid,
        project_id: Uuid,
        name: String,
        wrapped_dek: Vec<u8>,
        dek_nonce: Vec<u8>,
        kek_id: String,
    }
    let mut report = Rewrapped::default();
    let mut after = Uuid::nil();
    loop {
        let batch: Vec<Wrapped> = sqlx::query_as(table.select())
            .bind(keyring.current_id())
            .bind(after)
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = batch.last() else {
            return Ok(report);
        };
        after = last.id;
        for w in batch {
            let sealed = Sealed {
                ciphertext: Vec::new(),
                nonce: Vec::new(),
                wrapped_dek: w.wrapped_dek,
                dek_nonce: w.dek_nonce,
                kek_id: w.kek_id,
            };
            let new = match rewrap_sealed(keyring, w.project_id, &w.name, &sealed) {
                Ok(new) => new,
                Err(Error::UnknownKek { .. } | Error::Undecryptable(_)) => {
                    report.unreadable.push(w.id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let r = sqlx::query(table.update())
                .bind(w.id)
                .bind(&new.wrapped_dek)
                .bind(&new.dek_nonce)
                .bind(&new.kek_id)
                .bind(&sealed.kek_id)
                .bind(&sealed.wrapped_dek)
                .execute(&mut *conn)
                .await?;
            report.moved += r.rows_affected();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, byte: u8) -> String {
        format!("{id}:{}", B64.encode([byte; 32]))
    }

    fn ring() -> Keyring {
        Keyring::parse(&spec("k1", 1), &[]).expect("valid")
    }

    #[test]
    fn roundtrip() {
        let k = ring();
        let p = Uuid::new_v4();
        let s = seal(&k, p, "API_TOKEN", b"sk_live_1234567890");
        assert_eq!(s.kek_id, "k1");
        assert_eq!(s.nonce.len(), 12);
        assert_ne!(s.ciphertext, b"sk_live_1234567890");
        let plain = open(&k, p, "API_TOKEN", &s).expect("opens");
        assert_eq!(plain.as_slice(), b"sk_live_1234567890");
        // Fresh data key and nonces every time.
        let s2 = seal(&k, p, "API_TOKEN", b"sk_live_1234567890");
        assert_ne!(s.ciphertext, s2.ciphertext);
        assert_ne!(s.wrapped_dek, s2.wrapped_dek);
    }

    #[test]
    fn a_row_moved_to_another_project_or_name_does_not_open() {
        let k = ring();
        let p = Uuid::new_v4();
        let s = seal(&k, p, "A", b"value");
        assert!(matches!(
            open(&k, Uuid::new_v4(), "A", &s),
            Err(Error::Undecryptable(_))
        ));
        assert!(matches!(open(&k, p, "B", &s), Err(Error::Undecryptable(_))));
        // Swapping only the value layer from another row fails too.
        let other = seal(&k, p, "B", b"other");
        let spliced = Sealed {
            ciphertext: other.ciphertext,
            nonce: other.nonce,
            ..s.clone()
        };
        assert!(open(&k, p, "A", &spliced).is_err());
    }

    #[test]
    fn wrong_kek_fails_and_rotation_keeps_old_secrets_readable() {
        let p = Uuid::new_v4();
        let s = seal(&ring(), p, "A", b"value");
        let wrong = Keyring::parse(&spec("k1", 2), &[]).expect("valid");
        assert!(matches!(
            open(&wrong, p, "A", &s),
            Err(Error::Undecryptable(_))
        ));
        let other = Keyring::parse(&spec("k2", 2), &[]).expect("valid");
        assert!(matches!(
            open(&other, p, "A", &s),
            Err(Error::UnknownKek { .. })
        ));
        let rotated = Keyring::parse(&spec("k2", 2), &[&spec("k1", 1)]).expect("valid");
        assert_eq!(
            open(&rotated, p, "A", &s).expect("old key").as_slice(),
            b"value"
        );
        let moved = rewrap_sealed(&rotated, p, "A", &s).expect("rewraps");
        assert_eq!(moved.kek_id, "k2");
        assert_eq!(moved.ciphertext, s.ciphertext);
        assert_eq!(
            open(&other, p, "A", &moved).expect("new key").as_slice(),
            b"value"
        );
    }

    #[test]
    fn parses_specs() {
        let bare = Keyring::parse(&B64.encode([7u8; 32]), &[]).expect("bare key");
        assert_eq!(bare.current_id(), DEFAULT_KEK_ID);
        assert!(matches!(
            Keyring::parse("k:short", &[]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            Keyring::parse(&B64.encode([7u8; 16]), &[]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            Keyring::parse(&spec("a", 1), &[&spec("a", 2)]),
            Err(Error::InvalidKey(_))
        ));
        let generated = Keyring::generate_spec();
        assert!(Keyring::parse(&generated, &[]).is_ok());
    }

    #[test]
    fn debug_never_shows_key_bytes_or_values() {
        let k = Keyring::parse(&spec("k1", 0xAB), &[&spec("old", 0xCD)]).expect("valid");
        let d = format!("{k:?}");
        assert!(d.contains("k1") && d.contains("old"), "{d}");
        assert!(
            !d.contains(&B64.encode([0xABu8; 32])) && !d.contains("171"),
            "{d}"
        );
        let v = SecretValue::new("hunter2-very-secret".into());
        assert!(!format!("{v:?}").contains("hunter2"));
        let mut m = BTreeMap::new();
        m.insert("TOKEN".to_owned(), v);
        let d = format!("{:?}", Secrets(m));
        assert!(d.contains("TOKEN") && !d.contains("hunter2"), "{d}");
        // Errors name keys, never their bytes.
        let e = Keyring::parse("k:!!notbase64!!", &[]).expect_err("invalid");
        assert!(!e.to_string().contains("notbase64"), "{e}");
    }

    #[test]
    fn hints_show_at_most_the_last_four() {
        assert_eq!(hint("sk_live_abcdef12f3a9"), "sk_…f3a9");
        assert_eq!(hint("abcdefghijklmnop"), "…mnop");
        assert_eq!(hint("short-value"), "••••");
        assert_eq!(hint("ghp_0123456789abcdef"), "ghp_…cdef");
    }
}
