//! The refresh protocol over in-memory ports: a vault, a lock item and a
//! token endpoint that rotates refresh tokens, as CK1 does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::memory::{MemoryLock, MemoryVault};
use crate::ports::SystemClock;

/// CK1's endpoint: each refresh spends the refresh token and rotates it; a
/// spent one is refused. Yields once, so concurrent callers interleave.
#[derive(Debug, Default)]
struct Partner {
    grants: AtomicU32,
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

#[tokio::test]
async fn a_refreshed_token_that_cannot_be_stored_is_an_error() {
    let partner = Arc::new(Partner::new("refresh-0"));
    let (vault, lock, fleet) = fleet(1, &partner);
    vault.refuse_writes.store(true, Ordering::SeqCst);
    let err = fleet[0].token().await.unwrap_err();
    assert!(matches!(err, TokenError::Vault(_)), "{err}");
    let now = Utc::now();
    assert!(
        lock.as_instance("next").acquire(now, now).await.unwrap(),
        "the lock was released"
    );
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
/// it ahead or behind the others at the lock, the vault and the partner.
mod interleavings {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Call {
        Token,
        Rejected,
        Yield(u8),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            2 => Just(Call::Token),
            2 => Just(Call::Rejected),
            1 => (1..4_u8).prop_map(Call::Yield),
        ]
    }

    async fn play(tokens: &Tokens, calls: &[Call]) -> Result<(), TokenError> {
        for call in calls {
            match call {
                Call::Token => {
                    tokens.token().await?;
                }
                Call::Rejected => {
                    let rejected = tokens.token().await?;
                    tokens.refresh(&rejected).await?;
                }
                Call::Yield(times) => {
                    for _ in 0..*times {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// No refresh token is ever spent twice (the partner would refuse
        /// the second, failing that call), and the vault always ends with
        /// the pair the partner issued last.
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
                let mut tasks = tokio::task::JoinSet::new();
                for (tokens, calls) in fleet.into_iter().zip(plan.clone()) {
                    tasks.spawn(async move { play(&tokens, &calls).await });
                }
                while let Some(done) = tasks.join_next().await {
                    let result = done.expect("an instance's task ends");
                    assert!(result.is_ok(), "{result:?} in {plan:?}");
                }
                assert_eq!(
                    vault.stored().refresh_token,
                    *partner.current.lock().unwrap(),
                    "the vault lags the partner in {plan:?}"
                );
            });
        }
    }
}
