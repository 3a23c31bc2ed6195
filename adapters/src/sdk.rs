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

/// Whether a call the service may refuse on purpose was applied: `false`
/// when `refused` says its error is that refusal.
///
/// # Errors
/// Any other error of the call.
pub fn applied<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    refused: impl FnOnce(&E) -> bool,
) -> Result<bool, SdkError<E, R>> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(refused) => Ok(false),
        Err(err) => Err(err),
    }
}
