//! Lakes on S3 (`--lake s3://bucket/prefix`) or any S3-compatible store.
//!
//! object_store's S3 client, configured from the usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` for
//! S3-compatible stores, `AWS_ALLOW_HTTP=true` for plain-HTTP endpoints). Delta commits use
//! S3's conditional put (`If-None-Match: *`), so two writers never both create one commit file
//! and no lock table (DynamoDB) is needed; the store must support conditional writes (AWS S3
//! does since 2024, as do MinIO and Cloudflare R2).

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError, Path};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use std::str::FromStr;
use std::sync::{Arc, Once};
use url::Url;

#[derive(Debug, Default)]
struct S3Factory;

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
        for (key, value) in &config.raw {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder
            .build()
            .map_err(|source| DeltaTableError::ObjectStore { source })?;
        let prefix = Path::parse(url.path())
            .map_err(|error| DeltaTableError::InvalidTableLocation(format!("{url}: {error}")))?;
        Ok((Arc::new(store), prefix))
    }
}

impl LogStoreFactory for S3Factory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Makes `s3://` lake locations usable; called by [`crate::Lake::open`], idempotent.
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        let factory = Arc::new(S3Factory);
        for scheme in ["s3://", "s3a://"] {
            let url = Url::parse(scheme).expect("a scheme URL");
            object_store_factories().insert(url.clone(), factory.clone());
            logstore_factories().insert(url, factory.clone());
        }
    });
}

/// The object stores of a process that reads lake files it did not open itself (a Ballista
/// executor): `file://` and whatever is registered, and an S3 client per bucket made on first
/// use from the same `AWS_*` variables as the lake's own (executors are given the query
/// role's).
#[derive(Debug, Default)]
pub struct BucketStores {
    registered: datafusion::execution::object_store::DefaultObjectStoreRegistry,
}

impl datafusion::execution::object_store::ObjectStoreRegistry for BucketStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn object_store::ObjectStore>,
    ) -> Option<Arc<dyn object_store::ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn get_store(
        &self,
        url: &Url,
    ) -> datafusion::error::Result<Arc<dyn object_store::ObjectStore>> {
        if let Ok(store) = self.registered.get_store(url) {
            return Ok(store);
        }
        let bucket = match (url.scheme(), url.host_str()) {
            (scheme @ ("s3" | "s3a"), Some(bucket)) => format!("{scheme}://{bucket}"),
            _ => return self.registered.get_store(url),
        };
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(
            AmazonS3Builder::from_env()
                .with_url(&bucket)
                .build()
                .map_err(|error| {
                    datafusion::error::DataFusionError::ObjectStore(Box::new(error))
                })?,
        );
        let key = Url::parse(&bucket).map_err(|error| {
            datafusion::error::DataFusionError::Execution(format!("{bucket}: {error}"))
        })?;
        self.registered.register_store(&key, Arc::clone(&store));
        Ok(store)
    }
}
