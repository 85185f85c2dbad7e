//! The embedded backend declares exactly what it backs, and everything else answers
//! `Unsupported`.

use kyro_connector_qdrant::QdrantConnector;
use kyro_connector_sdk::{
    Connector, ConnectorPlugin, ErrorKind, Operation, OwnershipMode, WatermarkKind,
};

use crate::common::{TempDir, open_embedded, scope};

#[test]
fn the_embedded_manifest_declares_write_through_without_a_watermark() {
    let dir = TempDir::new("caps-manifest");
    let connector = open_embedded(dir.path());
    let manifest = connector.describe();
    let operations: Vec<Operation> = manifest.operations.iter().copied().collect();
    assert_eq!(
        operations,
        [Operation::Search, Operation::Fetch, Operation::Upsert, Operation::Delete]
    );
    assert_eq!(
        manifest.ownership_modes.iter().copied().collect::<Vec<_>>(),
        [OwnershipMode::WriteThrough]
    );
    assert_eq!(manifest.watermark_kind, WatermarkKind::None);
    let vector = manifest.vector.unwrap();
    assert_eq!(vector.dimension, 4);
    assert_eq!(manifest.caps.max_top_k, 50);
    assert_eq!(manifest.caps.max_fetch_ids, 20);
    let health = connector.health().unwrap();
    assert_eq!(health.store_version, "qdrant-edge 0.7.0");
}

#[test]
fn every_undeclared_operation_is_unsupported() {
    let dir = TempDir::new("caps-unsupported");
    let connector = open_embedded(dir.path());
    let manifest = connector.describe();
    let target = scope("acme", "docs");
    for operation in Operation::ALL {
        if manifest.supports(operation) {
            continue;
        }
        let err = match operation {
            Operation::Watermark => connector.watermark(&target).unwrap_err(),
            Operation::SnapshotVersion => connector.snapshot_version(&target).unwrap_err(),
            other => panic!("{other:?} is undeclared but has no probe here"),
        };
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{operation:?}");
    }
}

#[test]
fn the_plugin_declares_at_most_the_union_of_both_backends() {
    let info = QdrantConnector::plugin_info();
    assert_eq!(info.name, "qdrant");
    assert!(!info.manifest.supports(Operation::Watermark));
    assert!(!info.manifest.supports(Operation::SnapshotVersion));
    assert_eq!(info.manifest.watermark_kind, WatermarkKind::None);
}
