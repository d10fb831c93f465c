//! Signing keys at rest: each secret is sealed by the vault (bound to the
//! project and the name `webhook:<id>`) and kept in `webhooks.signing_keys`
//! as `[{kek_id, ciphertext, nonce, wrapped_dek, dek_nonce, created_at,
//! expires_at}]` (binary fields base64), newest first. A key whose
//! `expires_at` has passed no longer verifies (the end of a rotation's
//! grace period).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use meshhook_db::vault::{self, Keyring, Sealed};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::verify::Verification;
use crate::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    kek_id: String,
    ciphertext: String,
    nonce: String,
    wrapped_dek: String,
    dek_nonce: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

fn name(webhook_id: Uuid) -> String {
    format!("webhook:{webhook_id}")
}

/// A fresh signing secret for `v`: Standard Webhooks `whsec_` + base64 of
/// 32 random bytes; other schemes 32 random bytes as hex; JWT HS256 the
/// same (the caller may also give its own).
pub fn generate(v: &Verification) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut_slice());
    match v {
        Verification::StandardWebhooks => {
            Zeroizing::new(format!("whsec_{}", B64.encode(bytes.as_slice())))
        }
        _ => Zeroizing::new(hex::encode(bytes.as_slice())),
    }
}

/// Seals `secret` as a new key entry.
pub fn seal(
    keyring: &Keyring,
    project_id: Uuid,
    webhook_id: Uuid,
    secret: &str,
    now: DateTime<Utc>,
) -> Value {
    let s = vault::seal(keyring, project_id, &name(webhook_id), secret.as_bytes());
    serde_json::to_value(Stored {
        kek_id: s.kek_id,
        ciphertext: B64.encode(s.ciphertext),
        nonce: B64.encode(s.nonce),
        wrapped_dek: B64.encode(s.wrapped_dek),
        dek_nonce: B64.encode(s.dek_nonce),
        created_at: now,
        expires_at: None,
    })
    .unwrap_or(Value::Null)
}

/// The key list after a rotation: `new` first, and every key still valid
/// expiring at `grace_end` at the latest.
pub fn rotate(keys: &Value, new: Value, grace_end: DateTime<Utc>, now: DateTime<Utc>) -> Value {
    let mut out = vec![new];
    for mut k in parse(keys) {
        if k.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        k.expires_at = Some(k.expires_at.map_or(grace_end, |e| e.min(grace_end)));
        if k.expires_at.is_some_and(|e| e > now) {
            out.push(serde_json::to_value(k).unwrap_or(Value::Null));
        }
    }
    Value::Array(out)
}

fn parse(keys: &Value) -> Vec<Stored> {
    keys.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| serde_json::from_value(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A decrypted key with its end of validity.
pub struct Open {
    pub secret: Zeroizing<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Opens the keys still valid at `now`, newest first.
pub fn open(
    keyring: &Keyring,
    project_id: Uuid,
    webhook_id: Uuid,
    keys: &Value,
    now: DateTime<Utc>,
) -> Result<Vec<Open>, Error> {
    let mut out = Vec::new();
    for k in parse(keys) {
        if k.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        let dec = |s: &str| {
            B64.decode(s)
                .map_err(|_| Error::internal("a sealed webhook key is not base64"))
        };
        let sealed = Sealed {
            ciphertext: dec(&k.ciphertext)?,
            nonce: dec(&k.nonce)?,
            wrapped_dek: dec(&k.wrapped_dek)?,
            dek_nonce: dec(&k.dek_nonce)?,
            kek_id: k.kek_id.clone(),
        };
        let secret = vault::open(keyring, project_id, &name(webhook_id), &sealed)?;
        out.push(Open {
            secret,
            expires_at: k.expires_at,
        });
    }
    Ok(out)
}
