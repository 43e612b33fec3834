//! S3 adapter (aws-sdk-s3): path-style addressing against a custom endpoint
//! (MinIO in deployment, Garage in tests). Uploads above one part stream as
//! multipart uploads, so memory stays bounded by the part size.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::time::Duration;

use super::{
    Bucket, ByteStream, ObjectBody, ObjectMeta, ObjectPage, ObjectStore, StorageError,
    validate_key, validate_prefix,
};
use crate::config::StorageSettings;

/// Objects in an S3-compatible server.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    /// Signs presigned URLs for `storage.s3_public_endpoint`, when set.
    presigner: Option<Client>,
    prefix: String,
    part_bytes: usize,
}

fn backend_err(e: impl std::error::Error) -> StorageError {
    StorageError::Backend(DisplayErrorContext(e).to_string())
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
}

impl S3Store {
    /// Builds a client from settings. No network traffic happens here.
    pub fn new(settings: &StorageSettings) -> Self {
        let creds = Credentials::new(
            settings.s3_access_key_id.clone(),
            settings.s3_secret_access_key.expose().to_string(),
            None,
            None,
            "restoreflow-config",
        );
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.s3_region.clone()))
            .credentials_provider(creds)
            .force_path_style(true)
            // Streaming bodies would otherwise be sent aws-chunked with a
            // checksum trailer, which some S3-compatible servers reject.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        let presigner = (!settings.s3_public_endpoint.is_empty()).then(|| {
            Client::from_conf(
                builder
                    .clone()
                    .endpoint_url(settings.s3_public_endpoint.clone())
                    .build(),
            )
        });
        if !settings.s3_endpoint.is_empty() {
            builder = builder.endpoint_url(settings.s3_endpoint.clone());
        }
        // A server that accepts connections and never answers fails the
        // attempt instead of hanging it (and the job that waits on it).
        builder = builder.timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
                .read_timeout(Duration::from_secs(settings.timeout_secs.max(1)))
                .operation_attempt_timeout(Duration::from_secs(settings.timeout_secs.max(1)))
                .build(),
        );
        Self {
            client: Client::from_conf(builder.build()),
            presigner,
            prefix: settings.bucket_prefix.clone(),
            part_bytes: settings.multipart_part_bytes as usize,
        }
    }

    fn bucket(&self, b: Bucket) -> String {
        format!("{}{}", self.prefix, b.name())
    }

    fn not_found(bucket: Bucket, key: &str) -> StorageError {
        StorageError::NotFound {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }
    }

    async fn put_single(
        &self,
        bucket: Bucket,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StorageError> {
        let size = body.len() as u64;
        self.client
            .put_object()
            .bucket(self.bucket(bucket))
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(backend_err)?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            content_type: Some(content_type.to_string()),
            last_modified: Some(Utc::now()),
        })
    }

    /// Uploads the rest of `body` as parts after `first`; aborts on any failure.
    async fn put_multipart(
        &self,
        bucket: Bucket,
        key: &str,
        first: Bytes,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: Option<u64>,
    ) -> Result<ObjectMeta, StorageError> {
        let bucket_name = self.bucket(bucket);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&bucket_name)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(backend_err)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Backend("multipart upload without id".into()))?
            .to_string();
        let result = async {
            let mut parts = Vec::new();
            let mut total = first.len() as u64;
            let mut pending = Some(first);
            let mut buf = BytesMut::with_capacity(self.part_bytes);
            let mut done = false;
            while !done || pending.is_some() {
                if let Some(part) = pending.take() {
                    let number = parts.len() as i32 + 1;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&bucket_name)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .body(part.into())
                        .send()
                        .await
                        .map_err(backend_err)?;
                    parts.push(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .build(),
                    );
                }
                while !done && buf.len() < self.part_bytes {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            total += chunk.len() as u64;
                            if let Some(limit) = max_bytes
                                && total > limit
                            {
                                return Err(StorageError::TooLarge { limit });
                            }
                            buf.extend_from_slice(&chunk);
                        }
                        Some(Err(e)) => return Err(StorageError::Body(e.to_string())),
                        None => done = true,
                    }
                }
                if !buf.is_empty() {
                    pending = Some(buf.split().freeze());
                }
            }
            self.client
                .complete_multipart_upload()
                .bucket(&bucket_name)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(backend_err)?;
            Ok(total)
        }
        .await;
        match result {
            Ok(size) => Ok(ObjectMeta {
                key: key.to_string(),
                size,
                content_type: Some(content_type.to_string()),
                last_modified: Some(Utc::now()),
            }),
            Err(e) => {
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&bucket_name)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(error = %DisplayErrorContext(abort), key, "abort multipart upload failed");
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    #[tracing::instrument(skip(self), err)]
    async fn ensure_buckets(&self) -> Result<(), StorageError> {
        for b in Bucket::ALL {
            let name = self.bucket(b);
            if self.client.head_bucket().bucket(&name).send().await.is_ok() {
                continue;
            }
            match self.client.create_bucket().bucket(&name).send().await {
                Ok(_) => tracing::info!(bucket = %name, "created bucket"),
                Err(e) => {
                    let svc = e.as_service_error();
                    let exists = svc.is_some_and(|s| {
                        s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                    });
                    if !exists {
                        return Err(backend_err(e));
                    }
                }
            }
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), StorageError> {
        for b in Bucket::ALL {
            self.client
                .head_bucket()
                .bucket(self.bucket(b))
                .send()
                .await
                .map_err(|e| {
                    StorageError::Backend(format!("bucket {b}: {}", DisplayErrorContext(e)))
                })?;
        }
        Ok(())
    }

    #[tracing::instrument(skip(self, body), fields(size = body.len()), err)]
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StorageError> {
        validate_key(key)?;
        if body.len() > self.part_bytes {
            return self
                .put_stream(
                    bucket,
                    key,
                    super::stream_from_bytes(body),
                    content_type,
                    None,
                )
                .await;
        }
        self.put_single(bucket, key, body, content_type).await
    }

    #[tracing::instrument(skip(self, body), err)]
    async fn put_stream(
        &self,
        bucket: Bucket,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: Option<u64>,
    ) -> Result<ObjectMeta, StorageError> {
        validate_key(key)?;
        // Fill the first part; a body that ends before it is one plain PUT.
        let mut buf = BytesMut::new();
        while buf.len() < self.part_bytes {
            match body.next().await {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    if let Some(limit) = max_bytes
                        && buf.len() as u64 > limit
                    {
                        return Err(StorageError::TooLarge { limit });
                    }
                }
                Some(Err(e)) => return Err(StorageError::Body(e.to_string())),
                None => {
                    return self
                        .put_single(bucket, key, buf.freeze(), content_type)
                        .await;
                }
            }
        }
        let first = buf.split_to(self.part_bytes).freeze();
        let rest = futures::stream::once(async move { Ok(buf.freeze()) })
            .chain(body)
            .boxed();
        self.put_multipart(bucket, key, first, rest, content_type, max_bytes)
            .await
    }

    #[tracing::instrument(skip(self), err)]
    async fn get(&self, bucket: Bucket, key: &str) -> Result<ObjectBody, StorageError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(self.bucket(bucket))
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    Self::not_found(bucket, key)
                } else {
                    backend_err(e)
                }
            })?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            content_type: out.content_type().map(str::to_string),
            last_modified: out.last_modified().and_then(to_chrono),
        };
        let reader = out.body.into_async_read();
        Ok(ObjectBody {
            meta,
            stream: tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).boxed(),
        })
    }

    async fn head(&self, bucket: Bucket, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(self.bucket(bucket))
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_string),
                last_modified: out.last_modified().and_then(to_chrono),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(backend_err(e)),
        }
    }

    #[tracing::instrument(skip(self), err)]
    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        token: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, StorageError> {
        validate_prefix(prefix)?;
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(self.bucket(bucket))
            .max_keys(limit.clamp(1, 1000) as i32);
        if !prefix.is_empty() {
            req = req.prefix(prefix);
        }
        if let Some(t) = token {
            req = req.continuation_token(t);
        }
        let out = req.send().await.map_err(backend_err)?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    content_type: None,
                    last_modified: o.last_modified().and_then(to_chrono),
                })
            })
            .collect();
        let next_token = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ObjectPage {
            objects,
            next_token,
        })
    }

    #[tracing::instrument(skip(self), err)]
    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(self.bucket(bucket))
            .key(key)
            .send()
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn presign_get(
        &self,
        bucket: Bucket,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        if self.head(bucket, key).await?.is_none() {
            return Err(Self::not_found(bucket, key));
        }
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| StorageError::Backend(format!("presigning config: {e}")))?;
        let req = self
            .presigner
            .as_ref()
            .unwrap_or(&self.client)
            .get_object()
            .bucket(self.bucket(bucket))
            .key(key)
            .presigned(config)
            .await
            .map_err(backend_err)?;
        Ok(Some(req.uri().to_string()))
    }
}
