//! ERP polling: a client's orders, oldest change first, page by page
//! (`GET /apicenter/api/orders`), and the sharded index keys it reads.
//!
//! Every write stamps the order's `updated_at` (never going back) and its
//! index sort key `updated_key` = `{updated_at}#{order_number}`. The index
//! `by_client_updated` is keyed by `{client_code}#{shard}` ([`SHARDS`]
//! partitions per client, the shard a hash of the order number), so a large
//! client's writes spread over several index partitions.
//!
//! **Nothing is skipped.** The index is eventually consistent and a writer
//! stamps `updated_at` a moment before its write lands, so a change stamped T
//! may become visible after a change stamped later. A page therefore only
//! returns index entries stamped at or before the *horizon*, `now − settle`
//! (default 15 s): a page never goes past a position that could still be
//! filled in, and the cursor (the last `updated_key` returned) can resume
//! strictly after itself. An order that changed again appears again (its new
//! entry sorts later); the order shown is always the current one.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{Access, OrderNumber, OrderStatus, Scope};
use crate::error::{FieldError, StoreError};
use crate::problems::Problems;
use crate::record::callback::CallbackStatus;
use crate::record::{OrderRecord, format_update_time};

/// Index partitions per client (and per callback status). A partition takes
/// about 1,000 writes/s and a change moves an order's entry (a delete and a
/// put in the index: two writes), so one client can change about
/// 4 × 500 = 2,000 orders/s before its index throttles the table's writes.
pub const SHARDS: u32 = 4;

/// The index of a client's orders by last change.
pub const CLIENT_UPDATED_INDEX: &str = "by_client_updated";

/// The sparse index of callbacks an operator may need to look at, by status
/// and last change.
pub const CALLBACK_STATUS_INDEX: &str = "by_callback_status";

/// Page size bounds of `GET /apicenter/api/orders`.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;
/// At most this many `order_numbers` in one request (BatchGetItem's limit).
pub const MAX_ORDER_NUMBERS: usize = 100;

/// The default settle time: how far behind now a page stops.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(15);

/// A position before every key ('0' sorts before any year's first digit; an
/// empty string is not a valid key value in DynamoDB).
const START: &str = "0";

/// Which index a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedIndex {
    /// [`CLIENT_UPDATED_INDEX`], partitions from [`client_partitions`].
    ClientUpdated,
    /// [`CALLBACK_STATUS_INDEX`], partitions from [`callback_partitions`].
    CallbackStatus,
}

impl FeedIndex {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientUpdated => CLIENT_UPDATED_INDEX,
            Self::CallbackStatus => CALLBACK_STATUS_INDEX,
        }
    }
}

/// One index entry: where it sorts and which order it points to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub updated_key: String,
    pub order_number: OrderNumber,
}

/// A query's answer from one index partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexPage {
    /// Ascending by `updated_key`.
    pub entries: Vec<Entry>,
    /// The partition holds more entries in the range.
    pub more: bool,
}

impl IndexPage {
    /// `entries` (ascending) cut to at most `limit`; `more` also when cut.
    #[must_use]
    pub fn at_most(mut entries: Vec<Entry>, mut more: bool, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if entries.len() > limit {
            entries.truncate(limit);
            more = true;
        }
        Self { entries, more }
    }
}

/// The entries a page asks for: `after < updated_key <= upto` in `index`,
/// at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRange<'a> {
    pub index: FeedIndex,
    pub after: &'a str,
    pub upto: &'a str,
    pub limit: u32,
}

/// What polling needs from storage.
pub trait OrderFeed: Send + Sync {
    /// The entries of one index partition in `range`, ascending.
    fn index_page(
        &self,
        partition: &str,
        range: IndexRange<'_>,
    ) -> impl Future<Output = Result<IndexPage, StoreError>> + Send;

    /// The orders stored under these numbers that `access` may see (strongly
    /// consistent; missing and foreign ones are left out, in no particular
    /// order). As [`crate::ports::OrderStore::get`], a foreign order's owner
    /// is all that is read of it.
    fn get_many(
        &self,
        numbers: &[OrderNumber],
        access: Access<'_>,
    ) -> impl Future<Output = Result<Vec<OrderRecord>, StoreError>> + Send;
}

impl<T: OrderFeed + ?Sized> OrderFeed for std::sync::Arc<T> {
    fn index_page(
        &self,
        partition: &str,
        range: IndexRange<'_>,
    ) -> impl Future<Output = Result<IndexPage, StoreError>> + Send {
        (**self).index_page(partition, range)
    }

    fn get_many(
        &self,
        numbers: &[OrderNumber],
        access: Access<'_>,
    ) -> impl Future<Output = Result<Vec<OrderRecord>, StoreError>> + Send {
        (**self).get_many(numbers, access)
    }
}

/// FNV-1a of the order number: a stable shard in `0..SHARDS`.
#[must_use]
pub fn shard(order_number: &OrderNumber) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in order_number.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// The `feed_shard` attribute of an order: its partition in [`CLIENT_UPDATED_INDEX`].
#[must_use]
pub fn feed_shard(client_code: &str, order_number: &OrderNumber) -> String {
    format!("{client_code}#{}", shard(order_number))
}

/// All of a client's partitions in [`CLIENT_UPDATED_INDEX`].
#[must_use]
pub fn client_partitions(client_code: &str) -> Vec<String> {
    (0..SHARDS).map(|n| format!("{client_code}#{n}")).collect()
}

/// The callback statuses [`CALLBACK_STATUS_INDEX`] holds.
pub const LISTED_CALLBACK_STATUSES: [CallbackStatus; 4] = [
    CallbackStatus::Pending,
    CallbackStatus::Retrying,
    CallbackStatus::Failed,
    CallbackStatus::DeadLettered,
];

/// The `callback_shard` attribute: set only while the callback is in one of
/// [`LISTED_CALLBACK_STATUSES`] (a sparse index: delivered ones leave it).
#[must_use]
pub fn callback_shard(status: CallbackStatus, order_number: &OrderNumber) -> Option<String> {
    LISTED_CALLBACK_STATUSES
        .contains(&status)
        .then(|| format!("{}#{}", status.as_str(), shard(order_number)))
}

/// All partitions of one callback status in [`CALLBACK_STATUS_INDEX`].
#[must_use]
pub fn callback_partitions(status: CallbackStatus) -> Vec<String> {
    (0..SHARDS)
        .map(|n| format!("{}#{n}", status.as_str()))
        .collect()
}

/// The index sort key of an order changed at `at`.
#[must_use]
pub fn updated_key(at: DateTime<Utc>, order_number: &OrderNumber) -> String {
    format!("{}#{order_number}", format_update_time(at))
}

/// The lowest key at or after `at` (for `updated_since`): every key of that
/// millisecond sorts after it.
#[must_use]
pub fn key_from(at: DateTime<Utc>) -> String {
    format_update_time(at)
}

/// The highest key at or before `at` (the horizon).
#[must_use]
pub fn key_upto(at: DateTime<Utc>) -> String {
    // '~' sorts after every character an order number may hold.
    format!("{}#~", format_update_time(at))
}

/// Reads the entries in `range` over `partitions`, merged in key order.
/// `more`: entries remain after the last one.
pub async fn merged_page<F: OrderFeed>(
    feed: &F,
    partitions: &[String],
    range: IndexRange<'_>,
) -> Result<IndexPage, StoreError> {
    let mut entries = Vec::new();
    let mut more = false;
    for partition in partitions {
        let page = feed.index_page(partition, range).await?;
        more |= page.more;
        entries.extend(page.entries);
    }
    entries.sort();
    Ok(IndexPage::at_most(entries, more, range.limit))
}

/// The orders whose callback is `status`, read through the callback-status
/// index from `after` (an index key; "0" for the start), oldest change first.
/// The index lags the table: only orders whose stored status still is
/// `status` are returned.
pub async fn orders_with_callback_status<F: OrderFeed>(
    feed: &F,
    status: CallbackStatus,
    mut after: String,
) -> Result<Vec<OrderRecord>, StoreError> {
    let partitions = callback_partitions(status);
    let mut records = Vec::new();
    loop {
        let range = IndexRange {
            index: FeedIndex::CallbackStatus,
            after: &after,
            upto: "~",
            limit: 100,
        };
        let page = merged_page(feed, &partitions, range).await?;
        let numbers: Vec<OrderNumber> = page
            .entries
            .iter()
            .map(|entry| entry.order_number.clone())
            .collect();
        let mut found = feed.get_many(&numbers, Access::Service).await?;
        found.retain(|record| record.callback.status == status);
        for number in &numbers {
            if let Some(at) = found.iter().position(|r| &r.order.order_number == number) {
                records.push(found.swap_remove(at));
            }
        }
        match page.entries.last() {
            Some(last) if page.more => after.clone_from(&last.updated_key),
            _ => return Ok(records),
        }
    }
}

/// `GET /apicenter/api/orders`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollRequest {
    Changes(ChangesQuery),
    /// `order_numbers=a,b,…`: raw, in the order given.
    Numbers(Vec<String>),
}

/// The change feed's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesQuery {
    /// The position to continue after: the cursor, else just before `updated_since`.
    pub after: String,
    pub statuses: Vec<OrderStatus>,
    pub callback_status: Option<CallbackStatus>,
    pub limit: u32,
}

impl PollRequest {
    /// Parses a query string; every bad parameter is named.
    pub fn parse(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Problems::default();
        let mut seen = BTreeSet::new();
        let mut since = None;
        let mut statuses = Vec::new();
        let mut callback_status = None;
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        let mut numbers = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = name.into_owned();
            if !seen.insert(name.clone()) {
                errors.add(FieldError::new(&name, "is given more than once"));
                continue;
            }
            match name.as_str() {
                "updated_since" => match DateTime::parse_from_rfc3339(&value) {
                    Ok(at) => since = Some(at.with_timezone(&Utc)),
                    Err(_) => errors.add(FieldError::new(
                        &name,
                        "must be an RFC 3339 time, like 2026-11-30T02:00:00Z",
                    )),
                },
                "status" => {
                    for part in value.split(',') {
                        match part.parse::<OrderStatus>() {
                            Ok(status) if !statuses.contains(&status) => statuses.push(status),
                            Ok(_) => {}
                            Err(_) => errors.add(FieldError::new(
                                &name,
                                format!("{part:?} is not an order status"),
                            )),
                        }
                    }
                }
                "callback_status" => match value.parse::<CallbackStatus>() {
                    Ok(status) => callback_status = Some(status),
                    Err(_) => errors.add(FieldError::new(
                        &name,
                        format!("{value:?} is not a callback status"),
                    )),
                },
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                    _ => errors.add(FieldError::new(
                        &name,
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    )),
                },
                "cursor" => match decode_cursor(&value) {
                    Some(position) => cursor = Some(position),
                    None => errors.add(FieldError::new(&name, "is not a cursor this API returned")),
                },
                "order_numbers" => {
                    // Counted before anything is copied: a long list is one problem.
                    let count = value.split(',').count();
                    if value.split(',').any(str::is_empty) {
                        errors.add(FieldError::new(&name, "has an empty order number"));
                    } else if count > MAX_ORDER_NUMBERS {
                        errors.add(FieldError::new(
                            &name,
                            format!("lists {count} numbers; at most {MAX_ORDER_NUMBERS}"),
                        ));
                    } else {
                        numbers = Some(value.split(',').map(str::to_owned).collect());
                    }
                }
                _ => errors.add(FieldError::new(&name, "is not a parameter of this route")),
            }
        }
        if seen.contains("order_numbers") {
            for other in seen.iter().filter(|name| {
                *name != "order_numbers"
                    && [
                        "updated_since",
                        "status",
                        "callback_status",
                        "limit",
                        "cursor",
                    ]
                    .contains(&name.as_str())
            }) {
                errors.add(FieldError::new(
                    other,
                    "cannot be combined with order_numbers",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors.into_vec());
        }
        if let Some(numbers) = numbers {
            return Ok(Self::Numbers(numbers));
        }
        let after = match (cursor, since) {
            (Some(position), _) => position,
            (None, Some(since)) => key_from(since),
            (None, None) => START.to_owned(),
        };
        Ok(Self::Changes(ChangesQuery {
            after,
            statuses,
            callback_status,
            limit,
        }))
    }
}

/// The cursor is the last key returned, hex-encoded: opaque to clients.
#[must_use]
pub fn encode_cursor(position: &str) -> String {
    crate::hex::encode(position.as_bytes())
}

/// A cursor back into a position; `None` when it is not one we made.
#[must_use]
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(cursor.get(at..at + 2)?, 16).ok())
        .collect();
    let position = String::from_utf8(bytes?).ok()?;
    // A key, or a bare time (an empty page's cursor after `updated_since`).
    let (time, number) = position.split_once('#').unwrap_or((&position, ""));
    DateTime::parse_from_rfc3339(time).ok()?;
    if !number.is_empty() {
        OrderNumber::parse(number).ok()?;
    }
    Some(position)
}

/// One page of the change feed (the API shows it as [`crate::view::ChangesView`]).
#[derive(Debug, Clone)]
pub struct ChangesPage {
    pub orders: Vec<OrderRecord>,
    /// Where to continue: pass it as `cursor` next time, now or later.
    /// `null` only when nothing has been returned yet (poll again as before).
    pub next_cursor: Option<String>,
    /// More changes are ready now: fetch the next page at once.
    pub has_more: bool,
}

/// Several orders by number (the API shows it as [`crate::view::NumbersView`]).
#[derive(Debug, Clone)]
pub struct NumbersPage {
    pub orders: Vec<OrderRecord>,
    /// Numbers that are not the caller's orders (missing or another client's).
    pub missing: Vec<String>,
}

/// Reads the change feed of `client_code` as of `now`.
pub async fn changes<F: OrderFeed>(
    feed: &F,
    client_code: &str,
    query: &ChangesQuery,
    now: DateTime<Utc>,
    settle: Duration,
) -> Result<ChangesPage, StoreError> {
    let horizon = now - chrono::Duration::from_std(settle).unwrap_or_default();
    let upto = key_upto(horizon);
    let page = if query.after.as_str() >= upto.as_str() {
        IndexPage::default()
    } else {
        let range = IndexRange {
            index: FeedIndex::ClientUpdated,
            after: &query.after,
            upto: &upto,
            limit: query.limit,
        };
        merged_page(feed, &client_partitions(client_code), range).await?
    };
    let numbers: Vec<OrderNumber> = page
        .entries
        .iter()
        .map(|entry| entry.order_number.clone())
        .collect();
    let scope = Scope::Client(client_code.to_owned());
    let records = feed.get_many(&numbers, Access::Scope(&scope)).await?;
    let mut orders = Vec::with_capacity(page.entries.len());
    for entry in &page.entries {
        let Some(record) = records
            .iter()
            .find(|record| record.order.order_number == entry.order_number)
        else {
            continue;
        };
        if record.order.client_code != client_code
            || !(query.statuses.is_empty() || query.statuses.contains(&record.status))
            || query
                .callback_status
                .is_some_and(|status| status != record.callback.status)
        {
            continue;
        }
        orders.push(record.clone());
    }
    let next = page
        .entries
        .last()
        .map(|entry| entry.updated_key.clone())
        .or_else(|| (query.after != START).then(|| query.after.clone()));
    Ok(ChangesPage {
        orders,
        next_cursor: next.as_deref().map(encode_cursor),
        has_more: page.more,
    })
}

/// Reads `numbers` for `client_code`: another client's orders are missing.
pub async fn by_numbers<F: OrderFeed>(
    feed: &F,
    client_code: &str,
    numbers: &[String],
) -> Result<NumbersPage, StoreError> {
    let mut wanted: Vec<OrderNumber> = Vec::new();
    for number in numbers {
        if let Ok(number) = OrderNumber::parse(number)
            && !wanted.contains(&number)
        {
            wanted.push(number);
        }
    }
    let scope = Scope::Client(client_code.to_owned());
    let records = feed.get_many(&wanted, Access::Scope(&scope)).await?;
    let mut orders = Vec::new();
    let mut missing = Vec::new();
    for number in numbers {
        match records.iter().find(|record| {
            record.order.order_number.as_str() == number && record.order.client_code == client_code
        }) {
            Some(record)
                if !orders
                    .iter()
                    .any(|o: &OrderRecord| o.order.order_number.as_str() == number) =>
            {
                orders.push(record.clone());
            }
            Some(_) => {}
            None if !missing.contains(number) => missing.push(number.clone()),
            None => {}
        }
    }
    Ok(NumbersPage { orders, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The change-feed query `updated_since=<since>`.
    fn changes_since(since: &str) -> ChangesQuery {
        match PollRequest::parse(&format!("updated_since={since}")) {
            Ok(PollRequest::Changes(query)) => query,
            _ => panic!("a valid query"),
        }
    }

    #[test]
    fn a_url_of_thousands_of_bad_statuses_answers_a_bounded_list() {
        let query = format!("status={}", vec!["x"; 30_000].join(","));

        let errors = PollRequest::parse(&query).unwrap_err();

        assert_eq!(errors.len(), crate::problems::MAX_LISTED + 1);
        assert!(errors.last().unwrap().message.contains("29950 more"));
    }

    #[test]
    fn a_list_of_too_many_order_numbers_is_one_problem() {
        let query = format!("order_numbers={}", vec!["n"; 30_000].join(","));

        let errors = PollRequest::parse(&query).unwrap_err();

        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("lists 30000 numbers"));
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_was_made_from() {
        let key = "2026-11-30T06:00:00.123Z#mabang-1";
        assert_eq!(decode_cursor(&encode_cursor(key)).as_deref(), Some(key));
    }

    #[test]
    fn an_empty_pages_cursor_after_updated_since_is_accepted() {
        let query = changes_since("2026-11-30T02:00:00Z");
        assert_eq!(
            decode_cursor(&encode_cursor(&query.after)),
            Some(query.after)
        );
    }

    #[test]
    fn a_forged_cursor_is_refused() {
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&encode_cursor("not a key")), None);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let errors = PollRequest::parse("limit=0&status=lost&updated_since=yesterday&colour=red")
            .expect_err("four bad parameters");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "status", "updated_since", "colour"]);
    }

    #[test]
    fn order_numbers_are_at_most_a_hundred() {
        let many: Vec<String> = (0..101).map(|n| format!("o-{n}")).collect();
        let errors =
            PollRequest::parse(&format!("order_numbers={}", many.join(","))).expect_err("too many");
        assert_eq!(errors[0].field, "order_numbers");
    }

    #[test]
    fn updated_since_starts_at_its_own_millisecond() {
        let query = changes_since("2026-11-30T02:00:00Z");
        let at = DateTime::parse_from_rfc3339("2026-11-30T02:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let number = OrderNumber::parse("a-1").expect("number");
        assert!(updated_key(at, &number) > query.after);
        assert_eq!(query.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn shards_spread_order_numbers() {
        let used: BTreeSet<u32> = (0..100)
            .map(|n| shard(&OrderNumber::parse(&format!("mabang-{n}")).expect("number")))
            .collect();
        assert_eq!(used.len(), SHARDS as usize);
    }
}
