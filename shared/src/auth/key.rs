//! API keys: how they look, how they are stored (as hashes only), and what
//! they grant.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::{ApiKeyRecord, Scope};

/// A freshly issued key: the only moment the plain key exists on our side.
/// Its `Debug` shows the record only.
#[derive(Clone)]
pub struct IssuedKey {
    pub key: String,
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

pub use crate::random::RandomnessError;

/// Issues a new key for `scope`; `signed` also creates a signing secret.
pub fn issue(scope: Scope, signed: bool, now: DateTime<Utc>) -> Result<IssuedKey, RandomnessError> {
    let key = format!("wk_{}", random_hex(32)?);
    issue_with(key, scope, signed, now)
}

/// Stores a chosen key (the local stack's fixed demo keys).
pub fn issue_with(
    key: String,
    scope: Scope,
    signed: bool,
    now: DateTime<Utc>,
) -> Result<IssuedKey, RandomnessError> {
    let key_hash = hash_key(&key);
    let signing_secret = if signed {
        Some(format!("whsec_{}", random_hex(32)?))
    } else {
        None
    };
    Ok(IssuedKey {
        record: ApiKeyRecord {
            key_id: format!("key_{}", &key_hash[..16]),
            key_hash,
            scope,
            signing_secret,
            order_prefixes: Vec::new(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        },
        key,
    })
}

/// The stored form of a key.
#[must_use]
pub fn hash_key(key: &str) -> String {
    crate::hex::encode(&Sha256::digest(key.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, RandomnessError> {
    let mut buffer = vec![0_u8; bytes];
    crate::random::fill(&mut buffer)?;
    Ok(crate::hex::encode(&buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_key_is_stored_only_as_its_hash() {
        let issued = issue(Scope::Client("20".into()), false, Utc::now()).unwrap();
        assert!(issued.key.starts_with("wk_") && issued.key.len() == 67);
        assert_eq!(issued.record.key_hash, hash_key(&issued.key));
        assert!(!format!("{:?}", issued.record).contains(&issued.key));
    }

    #[test]
    fn a_rotated_key_works_until_its_expiry_and_a_revoked_one_not_at_all() {
        let now = Utc::now();
        let mut record = issue(Scope::Client("20".into()), false, now)
            .unwrap()
            .record;
        record.expires_at = Some(now + chrono::Duration::hours(1));
        assert!(record.active(now));
        assert!(!record.active(now + chrono::Duration::hours(2)));
        record.revoked_at = Some(now);
        assert!(!record.active(now));
    }

    #[test]
    fn a_key_record_s_debug_hides_its_signing_secret() {
        let issued = issue(Scope::Client("20".into()), true, Utc::now()).unwrap();
        let secret = issued.record.signing_secret.clone().unwrap();
        let printed = format!("{:?} {:?}", issued.record, issued);
        assert!(!printed.contains(&secret), "{printed}");
        assert!(!printed.contains(&issued.key), "{printed}");
        assert!(printed.contains(&issued.record.key_id));
    }
}
