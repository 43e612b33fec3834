//! The datasets a trainer uses, asked of their owner: synthetic-data's
//! `SyntheticDataService` (`trainer.synthetic_data_url`). The trainer never
//! reads or writes the `datasets` table; it knows a dataset as the
//! [`DatasetRow`] synthetic-data answers with.

use restoreflow_core::grpc::AuthChannel;
use restoreflow_proto::v1::{self, synthetic_data_service_client::SyntheticDataServiceClient};
use serde_json::Value;
use tonic::{Code, Status};

/// Datasets asked for per page when the trainer lists them all.
const PAGE: u32 = 200;

/// What the trainer knows of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    /// Dataset id (`syn-…` for generated sets, the user's name for uploads).
    pub id: String,
    /// `synthetic` or `upload`.
    pub source: String,
    /// `train`, `validation` or `test`.
    pub split: String,
    /// Number of pairs it was recorded with.
    pub num_pairs: u32,
    /// The recorded manifest summary (prefix, texts, target, dpi, …).
    pub manifest: Value,
    /// sha256 over its content.
    pub content_hash: String,
}

impl From<v1::Dataset> for DatasetRow {
    fn from(d: v1::Dataset) -> Self {
        Self {
            manifest: restoreflow_proto::dataset_manifest(&d),
            id: d.id,
            source: d.source,
            split: d.split,
            num_pairs: d.num_pairs,
            content_hash: d.content_hash,
        }
    }
}

/// Asking synthetic-data about datasets failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot ask synthetic-data about datasets: {}", .0.message())]
pub struct CatalogError(pub Status);

impl CatalogError {
    /// The status to pass on: the owner's answer, as it gave it.
    pub fn status(&self) -> Status {
        Status::new(self.0.code(), self.to_string())
    }
}

/// The dataset catalog: a client of synthetic-data.
#[derive(Clone)]
pub struct Catalog {
    client: SyntheticDataServiceClient<AuthChannel>,
}

impl Catalog {
    /// A catalog asking over `channel`.
    pub fn new(channel: AuthChannel) -> Self {
        Self {
            client: SyntheticDataServiceClient::new(channel),
        }
    }

    /// The dataset `id`; `None` when there is none (a string that is not a
    /// dataset id, such as a name prefix, has none either).
    pub async fn get(&self, id: &str) -> Result<Option<DatasetRow>, CatalogError> {
        let request = v1::GetDatasetRequest { id: id.to_string() };
        match self.client.clone().get_dataset(request).await {
            Ok(d) => Ok(Some(d.into_inner().into())),
            Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => Ok(None),
            Err(s) => Err(CatalogError(s)),
        }
    }

    /// Every dataset, or those of `split`.
    pub async fn list(&self, split: Option<&str>) -> Result<Vec<DatasetRow>, CatalogError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .client
                .clone()
                .list_datasets(v1::ListDatasetsRequest {
                    page_size: PAGE,
                    page_token: token,
                    split: split.unwrap_or_default().to_string(),
                })
                .await
                .map_err(CatalogError)?
                .into_inner();
            out.extend(page.datasets.into_iter().map(DatasetRow::from));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// Records an uploaded held-out set; the owner's status on refusal
    /// (`ALREADY_EXISTS` when the id is taken).
    pub async fn record_upload(
        &self,
        request: v1::RecordUploadRequest,
    ) -> Result<DatasetRow, Status> {
        Ok(self
            .client
            .clone()
            .record_upload(request)
            .await?
            .into_inner()
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_the_manifest_as_recorded() {
        let row = DatasetRow::from(v1::Dataset {
            id: "eval".into(),
            source: "upload".into(),
            split: "test".into(),
            num_pairs: 3,
            manifest_json: r#"{"prefix": "scan-", "texts": {"scan-1.png": "text/scan-1.txt"}}"#
                .into(),
            content_hash: "ab".into(),
            ..Default::default()
        });
        assert_eq!(row.manifest["prefix"], "scan-");
        assert_eq!(row.manifest["texts"]["scan-1.png"], "text/scan-1.txt");
        // None recorded: an empty object, never null.
        let bare = DatasetRow::from(v1::Dataset::default());
        assert_eq!(bare.manifest, serde_json::json!({}));
    }
}
