//! [`LabelStore`] on an S3 bucket of the stack: encrypted, public access
//! blocked, expired by a lifecycle rule (the template's `LabelsBucket`).
//! Objects are written with their SHA-256, so S3 refuses a corrupted upload;
//! the warehouse reads them through presigned links; a deleted label loses
//! every version.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use base64::Engine as _;

use shared::error::LabelError;
use shared::ports::LabelStore;

#[derive(Debug, Clone)]
pub struct S3LabelStore {
    client: Client,
    bucket: String,
}

impl S3LabelStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// An S3 client for `aws`; path-style addressing when an endpoint is set (the
/// local emulator serves buckets by path, not by host name).
#[must_use]
pub fn client(aws: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(std::env::var_os("AWS_ENDPOINT_URL_S3").is_some())
        .build();
    Client::from_conf(config)
}

/// What the bytes are, for the link's `Content-Type`.
fn content_type(bytes: &[u8]) -> &'static str {
    match bytes {
        [b'%', b'P', b'D', b'F', ..] => "application/pdf",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xff, 0xd8, 0xff, ..] => "image/jpeg",
        _ => "application/octet-stream",
    }
}

impl LabelStore for S3LabelStore {
    async fn put_label(&self, key: &str, bytes: Vec<u8>, sha256: &str) -> Result<(), LabelError> {
        let digest: Vec<u8> = (0..sha256.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(sha256.get(i..i + 2)?, 16).ok())
            .collect();
        let content_type = content_type(&bytes);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|err| LabelError(Box::new(err)))?;
        Ok(())
    }

    /// Deletes every version of the label, not only the current one: the
    /// bucket keeps versions (an accidental overwrite can be undone), but a
    /// deleted label is gone for good (it prints the buyer's address).
    async fn delete_label(&self, key: &str) -> Result<(), LabelError> {
        let listed = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|err| LabelError(Box::new(err)))?;
        let versions = listed
            .versions()
            .iter()
            .filter(|version| version.key() == Some(key))
            .filter_map(|version| version.version_id());
        let markers = listed
            .delete_markers()
            .iter()
            .filter(|marker| marker.key() == Some(key))
            .filter_map(|marker| marker.version_id());
        // A label is written once (its key is its SHA-256), so this is one
        // version, or two when an identical create raced; never a page.
        for version in versions.chain(markers) {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version)
                .send()
                .await
                .map_err(|err| LabelError(Box::new(err)))?;
        }
        Ok(())
    }

    async fn label_link(&self, key: &str, ttl: Duration) -> Result<String, LabelError> {
        let presigning =
            PresigningConfig::expires_in(ttl).map_err(|err| LabelError(Box::new(err)))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|err| LabelError(Box::new(err)))?;
        Ok(request.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_served_with_their_type() {
        assert_eq!(content_type(b"%PDF-1.7"), "application/pdf");
        assert_eq!(content_type(&[0x89, b'P', b'N', b'G', 0]), "image/png");
        assert_eq!(content_type(b"ZPL"), "application/octet-stream");
    }
}
