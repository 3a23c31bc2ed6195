//! What the AWS calls share: reading one item as it stands, and telling a
//! call the service refused on purpose (a failed condition, a resource that
//! exists already) from one that failed.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

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
