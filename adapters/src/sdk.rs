//! What the AWS calls share: reading one item as it stands, telling a call
//! the service refused on purpose (a failed condition, a resource that
//! exists already) from one that failed, and a conditional put that knows
//! its own write when the SDK sent it twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};

type Item = HashMap<String, AttributeValue>;

/// A strongly consistent read of the item whose string key `key` is `value`.
#[must_use]
pub fn read_item(client: &Client, table: &str, key: &str, value: String) -> GetItemFluentBuilder {
    client
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(value))
        .consistent_read(true)
}

/// The output of a call the service may refuse on purpose: `None` when
/// `refused` says its error is that refusal.
///
/// # Errors
/// Any other error of the call.
pub fn unless_refused<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    refused: impl FnOnce(&E) -> bool,
) -> Result<Option<T>, SdkError<E, R>> {
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.as_service_error().is_some_and(refused) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whether a call the service may refuse on purpose was applied
/// ([`unless_refused`]).
///
/// # Errors
/// Any other error of the call.
pub fn applied<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    refused: impl FnOnce(&E) -> bool,
) -> Result<bool, SdkError<E, R>> {
    unless_refused(result, refused).map(|output| output.is_some())
}

/// Puts `item` under the request's condition: `true` when it is written,
/// `false` when the condition failed, unless the item standing is `item`
/// itself. That is the SDK's retry of this very put, sent again after
/// DynamoDB did it and its answer was lost (a reset, an attempt timeout),
/// meeting the first try's write: written. Taken for a refusal, a failed
/// webhook delivery's settle had its queue message deleted and was never
/// tried again, and a signed request was refused as its own replay.
/// `operation` names its capacity ([`crate::capacity`]).
///
/// # Errors
/// Any other error of the call.
pub async fn put_once(
    operation: &'static str,
    request: PutItemFluentBuilder,
    item: Item,
) -> Result<bool, SdkError<PutItemError, HttpResponse>> {
    let written = request
        .set_item(Some(item.clone()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await;
    match written {
        Ok(output) => {
            crate::capacity::record(operation, output.consumed_capacity());
            Ok(true)
        }
        Err(err) => match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => Ok(failed
                .item
                .as_ref()
                .is_some_and(|stored| same_item(stored, &item))),
            _ => Err(err),
        },
    }
}

/// Whether two items hold the same attributes; a set's members may come
/// back in any order.
fn same_item(a: &Item, b: &Item) -> bool {
    fn members(value: &AttributeValue) -> Option<Vec<&String>> {
        let mut members: Vec<&String> = match value {
            AttributeValue::Ss(members) | AttributeValue::Ns(members) => members.iter().collect(),
            _ => return None,
        };
        members.sort();
        Some(members)
    }
    a.len() == b.len()
        && a.iter().all(|(name, value)| {
            b.get(name)
                .is_some_and(|other| match (members(value), members(other)) {
                    (Some(mine), Some(theirs)) => {
                        mine == theirs
                            && std::mem::discriminant(value) == std::mem::discriminant(other)
                    }
                    _ => value == other,
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(number: u64) -> AttributeValue {
        AttributeValue::N(number.to_string())
    }

    #[test]
    fn an_item_is_the_same_whatever_order_its_sets_come_back_in() {
        let item = |types: [&str; 2], version: u64| {
            Item::from([
                (
                    "event_types".into(),
                    AttributeValue::Ss(types.map(String::from).to_vec()),
                ),
                ("version".into(), n(version)),
            ])
        };
        let put = item(["order.shipped", "order.accepted"], 3);
        assert!(same_item(
            &put,
            &item(["order.accepted", "order.shipped"], 3)
        ));
        assert!(!same_item(
            &put,
            &item(["order.accepted", "order.picked"], 3)
        ));
        assert!(!same_item(
            &put,
            &item(["order.shipped", "order.accepted"], 4)
        ));
        let mut more = put.clone();
        more.insert("lease_owner".into(), AttributeValue::S("another".into()));
        assert!(!same_item(&put, &more), "another holder's lease");
        assert!(!same_item(&more, &put));
    }
}
