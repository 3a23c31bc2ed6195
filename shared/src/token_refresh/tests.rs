//! The refresh protocol over in-memory ports: a vault, a lock item and a
//! token endpoint that rotates refresh tokens, as CK1 does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::kept::STORE_AGAIN_AFTER;
use super::*;
use crate::memory::{MemoryLock, MemoryVault};
use crate::ports::SystemClock;

/// CK1's endpoint: each refresh spends the refresh token and rotates it; a
/// spent one is refused. Yields once, so concurrent callers interleave.
#[derive(Debug, Default)]
struct Partner {
    grants: AtomicU32,
    /// Refreshes that presented a spent refresh token.
    refused: AtomicU32,
    current: std::sync::Mutex<String>,
    expires_in: Option<Duration>,
}

impl Partner {
    fn new(refresh_token: &str) -> Self {
        Self {
            current: std::sync::Mutex::new(refresh_token.to_owned()),
            ..Self::default()
        }
    }

    fn grants(&self) -> u32 {
        self.grants.load(Ordering::SeqCst)
    }
}

impl TokenEndpoint for Arc<Partner> {
    async fn refresh(&self, credentials: &PartnerCredentials) -> Result<Grant, TokenError> {
        tokio::task::yield_now().await;
        let mut current = self.current.lock().unwrap();
        if credentials.refresh_token != *current {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(TokenError::Refresh(
                "invalid_grant: refresh token spent".into(),
            ));
        }
        let n = self.grants.fetch_add(1, Ordering::SeqCst) + 1;
        *current = format!("refresh-{n}");
        Ok(Grant {
            access_token: format!("access-{n}"),
            expires_in: self.expires_in,
            refresh_token: Some(current.clone()),
        })
    }
}

fn credentials() -> PartnerCredentials {
    PartnerCredentials {
        client_id: "client".into(),
        client_secret: "secret".into(),
        refresh_token: "refresh-0".into(),
        access_token: None,
        access_token_expires_at: None,
    }
}

type Tokens = TokenRefresh<Arc<MemoryVault>, MemoryLock, Arc<Partner>, SystemClock>;

/// `n` instances over one vault, one lock item and one partner.
fn fleet(n: usize, partner: &Arc<Partner>) -> (Arc<MemoryVault>, MemoryLock, Vec<Tokens>) {
    let vault = Arc::new(MemoryVault::new(credentials()));
    let lock = MemoryLock::new("nobody");
    let settings = RefreshSettings {
        wait_for_other: Duration::from_secs(2),
        ..RefreshSettings::default()
    };
    let instances = (0..n)
        .map(|i| {
            TokenRefresh::new(
                vault.clone(),
                lock.as_instance(&format!("instance-{i}")),
                partner.clone(),
                SystemClock,
                settings.clone(),
            )
        })
        .collect();
    (vault, lock, instances)
}

impl TokenVault for Arc<MemoryVault> {
    /// Yields first, as a network read would: another instance may write
    /// between this read and what the reader does next.
    async fn read(&self) -> Result<PartnerCredentials, TokenError> {
        tokio::task::yield_now().await;
        (**self).read().await
    }

    async fn write(&self, credentials: &PartnerCredentials) -> Result<(), TokenError> {
        (**self).write(credentials).await
    }
}

#[tokio::test]
async fn a_token_is_fetched_once_then_served_from_the_cache() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (vault, _, fleet) = fleet(1, &partner);
    let first = fleet[0].token().await.unwrap();
    let second = fleet[0].token().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.expose(), "access-1");
    assert_eq!(partner.grants(), 1);
    let stored = vault.stored();
    assert_eq!(
        stored.refresh_token, "refresh-1",
        "the rotated token is kept"
    );
    assert_eq!(stored.access_token.as_deref(), Some("access-1"));
}

#[tokio::test]
async fn a_rejected_token_is_replaced_by_a_new_one() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (_, _, fleet) = fleet(1, &partner);
    let first = fleet[0].token().await.unwrap();
    let second = fleet[0].refresh(&first).await.unwrap();
    assert_eq!(second.expose(), "access-2");
    assert_eq!(partner.grants(), 2);
}

#[tokio::test]
async fn instances_refreshing_at_once_spend_the_refresh_token_once() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (_, _, fleet) = fleet(3, &partner);
    // One task, interleaved at each await: the instances race on the lock.
    let (a, b, c) = tokio::join!(fleet[0].token(), fleet[1].token(), fleet[2].token());
    for token in [a, b, c] {
        assert_eq!(token.unwrap().expose(), "access-1");
    }
    assert_eq!(partner.grants(), 1);
}

/// A lock whose holder before us wrote a new pair between our read and our
/// acquiring it.
#[derive(Debug)]
struct RacedLock(Arc<MemoryVault>);

impl RefreshLock for RacedLock {
    async fn acquire(&self, now: DateTime<Utc>, _until: DateTime<Utc>) -> Result<bool, TokenError> {
        let mut credentials = self.0.stored();
        credentials.access_token = Some("from-the-other-instance".into());
        credentials.access_token_expires_at = Some(now + chrono::Duration::hours(1));
        credentials.refresh_token = "refresh-elsewhere".into();
        self.0.write(&credentials).await?;
        Ok(true)
    }

    async fn release(&self) {}
}

#[tokio::test]
async fn the_lock_holder_reads_again_and_takes_a_pair_written_meanwhile() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let vault = Arc::new(MemoryVault::new(credentials()));
    let tokens = TokenRefresh::new(
        vault.clone(),
        RacedLock(vault.clone()),
        partner.clone(),
        SystemClock,
        RefreshSettings::default(),
    );
    let token = tokens.token().await.unwrap();
    assert_eq!(token.expose(), "from-the-other-instance");
    assert_eq!(partner.grants(), 0, "a spent refresh token is never sent");
}

#[tokio::test]
async fn a_lock_held_by_a_stalled_instance_fails_after_the_wait() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (_, lock, fleet) = fleet(1, &partner);
    let stalled = lock.as_instance("stalled");
    let now = Utc::now();
    assert!(
        stalled
            .acquire(now, now + chrono::Duration::hours(1))
            .await
            .unwrap()
    );
    let started = tokio::time::Instant::now();
    let err = fleet[0].token().await.unwrap_err();
    assert!(
        matches!(err, TokenError::Refresh(ref why) if why.contains("has not finished")),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(partner.grants(), 0);
}

#[tokio::test]
async fn a_token_is_used_for_at_most_four_fifths_of_its_capped_lifetime() {
    let partner = Arc::new(Partner {
        expires_in: Some(Duration::from_secs(7 * 24 * 3600)),
        ..Partner::new("refresh-0")
    });
    let (vault, _, fleet) = fleet(1, &partner);
    let before = Utc::now();
    fleet[0].token().await.unwrap();
    let expires_at = vault.stored().access_token_expires_at.unwrap();
    let used_for = expires_at - before;
    let cap = chrono::Duration::hours(12);
    assert!(
        used_for <= cap * 4 / 5 + chrono::Duration::seconds(1),
        "{used_for}"
    );
    assert!(
        used_for >= cap * 4 / 5 - chrono::Duration::seconds(5),
        "{used_for}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_refusing_a_write_for_a_moment_still_gets_the_new_pair_before_the_lock_is_given_up()
{
    let partner = Arc::new(Partner::new("refresh-0"));
    let (vault, lock, fleet) = fleet(1, &partner);
    vault.failing_writes.store(2, Ordering::SeqCst);
    assert_eq!(fleet[0].token().await.unwrap().expose(), "access-1");
    assert_eq!(vault.stored().refresh_token, "refresh-1");
    let now = Utc::now();
    assert!(
        lock.as_instance("next").acquire(now, now).await.unwrap(),
        "the lock was released"
    );
}

/// A refresh spends the stored refresh token: a new pair that cannot be
/// stored must not be thrown away, or the next refresh anywhere presents a
/// spent token and the fleet is locked out until an operator acts.
#[tokio::test(start_paused = true)]
async fn a_new_pair_the_store_refuses_is_used_and_stored_by_a_later_call() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (vault, lock, fleet) = fleet(2, &partner);
    vault.failing_writes.store(u32::MAX, Ordering::SeqCst);
    assert_eq!(fleet[0].token().await.unwrap().expose(), "access-1");
    assert_eq!(vault.stored().refresh_token, "refresh-0");
    let now = Utc::now();
    assert!(
        !lock.as_instance("next").acquire(now, now).await.unwrap(),
        "the lock is held while the pair is kept: nobody presents the spent refresh token"
    );
    vault.failing_writes.store(0, Ordering::SeqCst);
    tokio::time::sleep(STORE_AGAIN_AFTER).await;
    assert_eq!(fleet[0].token().await.unwrap().expose(), "access-1");
    assert_eq!(vault.stored().refresh_token, "refresh-1");
    let now = Utc::now();
    assert!(
        lock.as_instance("next").acquire(now, now).await.unwrap(),
        "the lock is released once the pair is stored"
    );
    assert_eq!(fleet[1].token().await.unwrap().expose(), "access-1");
    assert_eq!(partner.grants(), 1);
}

#[tokio::test(start_paused = true)]
async fn while_the_store_refuses_writes_a_rejected_token_is_refreshed_with_the_kept_pair() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (vault, _, fleet) = fleet(1, &partner);
    vault.failing_writes.store(u32::MAX, Ordering::SeqCst);
    let first = fleet[0].token().await.unwrap();
    let second = fleet[0].refresh(&first).await.unwrap();
    assert_eq!(second.expose(), "access-2");
    vault.failing_writes.store(0, Ordering::SeqCst);
    tokio::time::sleep(STORE_AGAIN_AFTER).await;
    fleet[0].token().await.unwrap();
    assert_eq!(vault.stored().refresh_token, "refresh-2");
    assert_eq!(vault.stored().access_token.as_deref(), Some("access-2"));
}

#[test]
fn debug_of_credentials_and_grants_shows_no_secret() {
    let mut credentials = credentials();
    credentials.access_token = Some("access-secret".into());
    let grant = Grant {
        access_token: "access-secret".into(),
        expires_in: None,
        refresh_token: Some("refresh-secret".into()),
    };
    let debug = format!("{credentials:?} {grant:?}");
    assert!(!debug.contains("secret"), "{debug}");
}

/// The fleet under generated interleavings: each instance asks for tokens,
/// or reports its token rejected, with yields between its calls that move
/// it ahead or behind the others at the lock, the vault and the partner,
/// and turns the vault's writes off and on (a vault that refuses the new
/// pair for a while).
mod interleavings {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Call {
        Token,
        Rejected,
        Yield(u8),
        VaultRefusesWrites,
        VaultTakesWrites,
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            2 => Just(Call::Token),
            2 => Just(Call::Rejected),
            1 => (1..4_u8).prop_map(Call::Yield),
            1 => Just(Call::VaultRefusesWrites),
            1 => Just(Call::VaultTakesWrites),
        ]
    }

    /// Plays `calls`; what they answered (a call waiting out another
    /// instance's lock may fail, and the instance goes on).
    async fn play(tokens: &Tokens, vault: &MemoryVault, calls: &[Call]) -> Vec<TokenError> {
        let mut errors = Vec::new();
        for call in calls {
            let answer = match call {
                Call::Token => tokens.token().await.map(drop),
                Call::Rejected => match tokens.token().await {
                    Ok(rejected) => tokens.refresh(&rejected).await.map(drop),
                    Err(err) => Err(err),
                },
                Call::Yield(times) => {
                    for _ in 0..*times {
                        tokio::task::yield_now().await;
                    }
                    Ok(())
                }
                Call::VaultRefusesWrites => {
                    vault.failing_writes.store(u32::MAX, Ordering::SeqCst);
                    Ok(())
                }
                Call::VaultTakesWrites => {
                    vault.failing_writes.store(0, Ordering::SeqCst);
                    Ok(())
                }
            };
            errors.extend(answer.err());
        }
        errors
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// No refresh token is ever spent twice (the partner counts each
        /// spent one presented), not even while the vault refuses writes;
        /// every call succeeds while the vault takes them; and once it
        /// takes them again, the vault ends with the pair the partner
        /// issued last and every instance gets a token.
        #[test]
        fn every_interleaving_spends_each_refresh_token_once(
            plan in prop::collection::vec(prop::collection::vec(call(), 1..6), 2..5),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let partner = Arc::new(Partner::new("refresh-0"));
                let (vault, _, fleet) = fleet(plan.len(), &partner);
                let fleet: Vec<Arc<Tokens>> = fleet.into_iter().map(Arc::new).collect();
                let vault_ever_refused = plan.iter().flatten().any(|c| matches!(c, Call::VaultRefusesWrites));
                let mut tasks = tokio::task::JoinSet::new();
                for (tokens, calls) in fleet.iter().cloned().zip(plan.clone()) {
                    let vault = vault.clone();
                    tasks.spawn(async move { play(&tokens, &vault, &calls).await });
                }
                while let Some(done) = tasks.join_next().await {
                    let errors = done.expect("an instance's task ends");
                    assert!(
                        vault_ever_refused || errors.is_empty(),
                        "{errors:?} in {plan:?}"
                    );
                }
                assert_eq!(partner.refused.load(Ordering::SeqCst), 0, "a spent refresh token was presented in {plan:?}");
                vault.failing_writes.store(0, Ordering::SeqCst);
                tokio::time::sleep(STORE_AGAIN_AFTER).await;
                for tokens in &fleet {
                    let _ = tokens.token().await;
                }
                for tokens in &fleet {
                    let token = tokens.token().await;
                    assert!(token.is_ok(), "{token:?} after the vault came back, in {plan:?}");
                }
                assert_eq!(partner.refused.load(Ordering::SeqCst), 0, "a spent refresh token was presented in {plan:?}");
                assert_eq!(
                    vault.stored().refresh_token,
                    *partner.current.lock().unwrap(),
                    "the vault lags the partner in {plan:?}"
                );
            });
        }
    }
}
