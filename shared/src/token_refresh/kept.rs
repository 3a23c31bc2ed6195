//! A new pair the vault would not take: kept by the instance that got it,
//! used for its posts and refreshes, stored at a later call. The instance
//! holds the fleet-wide lock meanwhile (renewing its lease at each try), so
//! no other dispatcher presents the refresh token the pair replaced: a
//! partner that detects a spent refresh token may revoke the whole family.

use std::time::Duration;

use super::{
    Clock, PartnerCredentials, RefreshLock, TokenEndpoint, TokenError, TokenRefresh, TokenVault,
    chrono_duration,
};

/// The pauses between the holder's writes of a new pair the vault refused,
/// all inside the lock's lease so no one refreshes meanwhile.
pub(super) const WRITE_PAUSES: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

/// How long a kept pair waits before the next try to store it, so a vault
/// that stays down costs a write (and a log line) every few seconds, not
/// one per post.
pub(super) const STORE_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// A new pair this instance got but could not store.
#[derive(Debug)]
pub(super) struct Unsaved {
    /// The refresh token the refresh spent: the vault still holding it
    /// means nobody stored a newer pair since.
    spent: String,
    credentials: PartnerCredentials,
    store_again_at: tokio::time::Instant,
}

impl<V: TokenVault, L: RefreshLock, E: TokenEndpoint, C: Clock> TokenRefresh<V, L, E, C> {
    fn unsaved(&self) -> std::sync::MutexGuard<'_, Option<Unsaved>> {
        self.unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pair this instance kept, if any: newer than the vault's.
    pub(super) fn kept_pair(&self) -> Option<PartnerCredentials> {
        self.unsaved().as_ref().map(|kept| kept.credentials.clone())
    }

    /// The refresh token the vault holds while a pair is kept; `None` when
    /// none is (the vault holds what a refresh spends).
    pub(super) fn spent_by_kept_pair(&self) -> Option<String> {
        self.unsaved().as_ref().map(|kept| kept.spent.clone())
    }

    pub(super) fn keep(&self, spent: String, credentials: PartnerCredentials) {
        *self.unsaved() = Some(Unsaved {
            spent,
            credentials,
            store_again_at: tokio::time::Instant::now() + STORE_AGAIN_AFTER,
        });
    }

    pub(super) fn forget_kept_pair(&self) {
        *self.unsaved() = None;
    }

    /// Takes or renews the lock for its lease. A lease that lapsed and was
    /// taken by another holder is not waited for: the kept pair still works.
    pub(super) async fn hold_the_lock(&self) -> Result<(), TokenError> {
        let now = self.clock.now();
        self.lock
            .acquire(now, now + chrono_duration(self.settings.lock_lease))
            .await?;
        Ok(())
    }

    /// Gives up the lock, unless a pair is kept (then it is held until the
    /// pair is stored).
    pub(super) async fn release_unless_kept(&self) {
        if self.unsaved().is_none() {
            self.lock.release().await;
        }
    }

    /// Stores the pair this instance kept, when it is time to try again
    /// and the vault still holds the refresh token it replaces.
    pub(super) async fn store_kept_pair(&self) {
        let now = tokio::time::Instant::now();
        let Some((spent, credentials)) = self
            .unsaved()
            .as_ref()
            .filter(|kept| kept.store_again_at <= now)
            .map(|kept| (kept.spent.clone(), kept.credentials.clone()))
        else {
            return;
        };
        let stored = match self.vault.read().await {
            Ok(stored) if stored.refresh_token != spent => {
                tracing::warn!(
                    "another dispatcher stored a newer partner token; this instance's kept pair is dropped"
                );
                Ok(())
            }
            Ok(_) => match self.hold_the_lock().await {
                Ok(()) => self.vault.write(&credentials).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        if let Err(err) = stored {
            tracing::error!(error = %err, "the refreshed partner token still cannot be stored; this instance keeps using it");
            if let Some(kept) = self.unsaved().as_mut() {
                kept.store_again_at = now + STORE_AGAIN_AFTER;
            }
            return;
        }
        tracing::info!("the partner token this instance kept is stored");
        self.forget_kept_pair();
        self.lock.release().await;
    }

    /// Writes `credentials`, again after each of [`WRITE_PAUSES`] if the
    /// vault refuses; the last refusal when it never takes them.
    pub(super) async fn write_while_holding_the_lock(
        &self,
        credentials: &PartnerCredentials,
    ) -> Result<(), TokenError> {
        let mut written = self.vault.write(credentials).await;
        for pause in WRITE_PAUSES {
            let Err(err) = &written else { break };
            tracing::warn!(error = %err, "storing the refreshed partner token failed; trying again");
            tokio::time::sleep(pause).await;
            written = self.vault.write(credentials).await;
        }
        written
    }
}
