//! Unit tests of the pure parts: the dataset's tenant split and the date in the report.

use crate::dataset::Dataset;
use crate::machine::utc_date;

#[test]
fn tenant_split_matches_the_connector_bench_and_covers_every_row() {
    let default = Dataset { n_rows: 100_000, dimension: 768 };
    assert_eq!(default.tenant_rows(), [50_000, 30_000, 15_000, 5_000]);
    let quick = Dataset { n_rows: 2_000, dimension: 8 };
    assert_eq!(quick.tenant_rows(), [1_000, 600, 300, 100]);
    let odd = Dataset { n_rows: 1_003, dimension: 8 };
    assert_eq!(odd.tenant_rows().iter().sum::<usize>(), 1_003);
    let rows: Vec<_> = quick.rows().collect();
    assert_eq!(rows.len(), 2_000);
    assert_eq!((rows[999].tenant.as_str(), rows[1_000].tenant.as_str()), ("tenant-0", "tenant-1"));
    assert_eq!(rows[1_999].tenant, "tenant-3");
    assert_eq!(rows[0].embedding.len(), 8);
}

#[test]
fn utc_dates() {
    assert_eq!(utc_date(0), "1970-01-01");
    assert_eq!(utc_date(951_782_400), "2000-02-29");
    assert_eq!(utc_date(1_767_225_599), "2025-12-31");
}
