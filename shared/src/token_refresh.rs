//! The partner's OAuth2 token refresh (CK1), as a protocol over three ports:
//! the [`TokenVault`] that holds the credentials (one Secrets Manager secret
//! in AWS), the fleet-wide [`RefreshLock`] (an item in the partner-state
//! table) and the partner's [`TokenEndpoint`].
//!
//! - **Per warm instance** the token is cached; a `tokio::sync::Mutex` held
//!   across a refresh makes refreshes single-flight within the process.
//! - **Across instances** the lock lets one dispatcher refresh at a time. A
//!   lock, not a conditional write on the vault: Secrets Manager has no
//!   compare-and-set, and the race that matters happens *before* the write,
//!   at the token endpoint. When CK1 rotates refresh tokens, a second
//!   dispatcher that spent the same refresh token would get an error (or
//!   invalidate the first one's pair). So the lock holder re-reads the vault
//!   first and refreshes only if nobody did meanwhile; a dispatcher that
//!   finds the lock taken waits for the new token to appear in the vault.
//! - **Expiry.** `AccessTokenExpiresIn`'s unit is not documented (seconds?
//!   minutes?): it is read as seconds, the shorter reading, so a token is
//!   refreshed early rather than late, and at most `max_lifetime` after it
//!   was issued; a 401 refreshes it anyway.
//! - **A new pair the vault will not take** is not thrown away: the refresh
//!   spent the stored refresh token, so dropping the pair would leave every
//!   dispatcher presenting a spent token. The holder writes it again under
//!   the lock (the SDK's retries come on top), and if the vault still
//!   refuses, the instance keeps the pair ([`Unsaved`]), posts with it,
//!   refreshes with it, and stores it at a later call, unless the vault has
//!   moved on meanwhile (another instance stored a pair since).
//!
//! Nothing here logs a token or secret: [`PartnerCredentials`] has a
//! redacting `Debug`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::{AccessToken, Clock, TokenError, TokenSource};

/// The vault's JSON: the OAuth2 client, its refresh token and the newest
/// access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// When to stop using `access_token` (already early: see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PartnerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerCredentials")
            .field("client_id", &self.client_id)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish_non_exhaustive()
    }
}

impl PartnerCredentials {
    /// The stored access token, if it is still good at `now`.
    fn fresh_token(&self, now: DateTime<Utc>) -> Option<Cached> {
        let token = self.access_token.as_ref()?;
        let expires_at = self.access_token_expires_at?;
        (expires_at > now).then(|| Cached {
            token: AccessToken::new(token.clone()),
            expires_at,
        })
    }
}

/// Where the credentials are kept, shared by every dispatcher.
pub trait TokenVault: Send + Sync {
    /// The credentials as stored now.
    fn read(&self) -> impl Future<Output = Result<PartnerCredentials, TokenError>> + Send;

    /// Stores `credentials` (after a refresh), for every dispatcher.
    fn write(
        &self,
        credentials: &PartnerCredentials,
    ) -> impl Future<Output = Result<(), TokenError>> + Send;
}

/// The fleet-wide refresh lock: one holder at a time, for a lease.
pub trait RefreshLock: Send + Sync {
    /// Takes the lock until `until` (or renews it); `false` when another
    /// holder's lease has not run out at `now`.
    fn acquire(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, TokenError>> + Send;

    /// Gives the lock up (it also runs out by itself).
    fn release(&self) -> impl Future<Output = ()> + Send;
}

/// What the partner's token endpoint granted.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    /// `AccessTokenExpiresIn`, read as seconds; `None` when not said.
    pub expires_in: Option<Duration>,
    /// A rotated refresh token, when the partner sent one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_in", &self.expires_in)
            .field("rotated", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The partner's token endpoint.
pub trait TokenEndpoint: Send + Sync {
    /// Spends `credentials`' refresh token for a new access token.
    fn refresh(
        &self,
        credentials: &PartnerCredentials,
    ) -> impl Future<Output = Result<Grant, TokenError>> + Send;
}

/// Tunables of [`TokenRefresh`].
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// The longest an access token is used, whatever its `ExpiresIn` says.
    pub max_lifetime: Duration,
    /// How long the fleet-wide lock is held at most.
    pub lock_lease: Duration,
    /// How long a dispatcher waits for another one's refresh.
    pub wait_for_other: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            max_lifetime: Duration::from_secs(12 * 3600),
            lock_lease: Duration::from_secs(30),
            wait_for_other: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
struct Cached {
    token: AccessToken,
    expires_at: DateTime<Utc>,
}

/// Refresh ahead: after this share of a token's lifetime.
const AHEAD: f64 = 0.8;

/// How often a waiting dispatcher looks for another one's new token.
const POLL: Duration = Duration::from_millis(200);

/// OAuth2 access tokens: cached, refreshed under the fleet-wide lock.
#[derive(Debug)]
pub struct TokenRefresh<V, L, E, C> {
    vault: V,
    lock: L,
    endpoint: E,
    clock: C,
    settings: RefreshSettings,
    cache: tokio::sync::Mutex<Option<Cached>>,
    unsaved: std::sync::Mutex<Option<kept::Unsaved>>,
}

impl<V: TokenVault, L: RefreshLock, E: TokenEndpoint, C: Clock> TokenRefresh<V, L, E, C> {
    pub fn new(vault: V, lock: L, endpoint: E, clock: C, settings: RefreshSettings) -> Self {
        Self {
            vault,
            lock,
            endpoint,
            clock,
            settings,
            cache: tokio::sync::Mutex::new(None),
            unsaved: std::sync::Mutex::new(None),
        }
    }

    /// A token newer than `stale` (or any good one when `stale` is `None`):
    /// from the vault if another instance refreshed, else refreshed here
    /// under the fleet-wide lock. The caller holds the instance's mutex.
    async fn renew(&self, stale: Option<&AccessToken>) -> Result<Cached, TokenError> {
        let replaced = |credentials: &PartnerCredentials| {
            credentials
                .fresh_token(self.clock.now())
                .filter(|cached| stale.is_none_or(|stale| cached.token != *stale))
        };
        if let Some(kept) = self.kept_pair() {
            // This instance holds the newest pair, and the lock: the vault lags.
            if let Some(cached) = replaced(&kept) {
                return Ok(cached);
            }
            self.hold_the_lock().await?;
            let result = self.refresh_at_partner(kept).await;
            self.release_unless_kept().await;
            return result;
        }
        let deadline = tokio::time::Instant::now() + self.settings.wait_for_other;
        loop {
            if let Some(cached) = replaced(&self.vault.read().await?) {
                return Ok(cached);
            }
            let now = self.clock.now();
            let until = now + chrono_duration(self.settings.lock_lease);
            if self.lock.acquire(now, until).await? {
                // Read again under the lock: the holder before us may have
                // written a new pair between our read and our lock.
                let result = match self.vault.read().await {
                    Ok(credentials) => match replaced(&credentials) {
                        Some(cached) => Ok(cached),
                        None => self.refresh_at_partner(credentials).await,
                    },
                    Err(err) => Err(err),
                };
                self.release_unless_kept().await;
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Refresh(
                    "another dispatcher is refreshing the token and has not finished".into(),
                ));
            }
            tracing::info!("another dispatcher is refreshing the partner token; waiting for it");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spends the refresh token and stores what comes back.
    async fn refresh_at_partner(
        &self,
        mut credentials: PartnerCredentials,
    ) -> Result<Cached, TokenError> {
        let grant = self.endpoint.refresh(&credentials).await?;
        // What the vault holds: the refresh token spent here, or, when
        // this refreshed with a kept pair, the one that pair replaces.
        let spent = self
            .spent_by_kept_pair()
            .unwrap_or_else(|| credentials.refresh_token.clone());
        let lifetime = grant.expires_in.map_or(self.settings.max_lifetime, |said| {
            said.min(self.settings.max_lifetime)
        });
        let expires_at = self.clock.now() + chrono_duration(lifetime.mul_f64(AHEAD));
        credentials.access_token = Some(grant.access_token.clone());
        credentials.access_token_expires_at = Some(expires_at);
        if let Some(refresh_token) = grant.refresh_token.filter(|t| !t.is_empty()) {
            credentials.refresh_token = refresh_token;
        }
        if let Err(err) = self.write_while_holding_the_lock(&credentials).await {
            // The partner took the stored refresh token: this pair is the
            // only one that works now. Keep it, store it later.
            tracing::error!(error = %err, expires_at = %expires_at,
                "partner access token refreshed but not stored; this instance keeps it and stores it later");
            self.keep(spent, credentials);
        } else {
            self.forget_kept_pair();
            tracing::info!(expires_at = %expires_at, lifetime_s = lifetime.as_secs(),
                "partner access token refreshed and stored");
        }
        Ok(Cached {
            token: AccessToken::new(grant.access_token),
            expires_at,
        })
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::seconds(60))
}

impl<V: TokenVault, L: RefreshLock, E: TokenEndpoint, C: Clock> TokenSource
    for TokenRefresh<V, L, E, C>
{
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        self.store_kept_pair().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.expires_at > self.clock.now()) {
            return Ok(cached.token.clone());
        }
        let fresh = self.renew(None).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        self.store_kept_pair().await;
        // Another task of this instance already replaced it.
        if let Some(cached) = cache
            .as_ref()
            .filter(|c| c.token != *rejected && c.expires_at > self.clock.now())
        {
            return Ok(cached.token.clone());
        }
        *cache = None;
        let fresh = self.renew(Some(rejected)).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }
}

mod kept;
#[cfg(test)]
mod tests;
