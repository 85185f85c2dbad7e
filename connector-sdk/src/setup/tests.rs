//! Setup findings: the error that carries them reads well and parses back to exactly the same
//! findings, across the plugin boundary's error conversion too; log lines round-trip; nothing else
//! parses as findings.

use crate::abi::AbiError;
use crate::{ConnectorError, ErrorKind, SetupFinding, SetupFindings, SetupFindingsExt};

fn sample() -> SetupFindings {
    SetupFindings::new(
        "table \"public\".\"docs\" cannot back ownership_mode write_through: 2 blocking findings",
        vec![
            SetupFinding::blocking(
                "a unique key on (\"tenant_id\", \"namespace\", \"id\") in that order",
                "the table has a primary key on (\"id\") only",
            )
            .with_fix_sql(
                "ALTER TABLE \"public\".\"docs\" ADD UNIQUE (\"tenant_id\", \"namespace\", \"id\");",
            ),
            SetupFinding::blocking("the vector extension", "it is not installed")
                .with_fix_sql("CREATE EXTENSION vector;"),
            SetupFinding::advisory(
                "an hnsw index on \"embedding\" with vector_cosine_ops",
                "there is none: searches scan each scope in full",
            )
            .with_fix_sql(
                "CREATE TABLE \"t\" (\n  \"id\" text NOT NULL,\n\n  \"embedding\" vector(8)\n);\n",
            ),
            SetupFinding::advisory("a role that may read the table", "no fix statement applies"),
        ],
    )
}

#[test]
fn findings_survive_the_error_and_the_plugin_boundary() {
    let findings = sample();
    let error = findings.clone().into_error();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(error.setup_findings().as_ref(), Some(&findings));
    let crossed = ConnectorError::from(AbiError::from(&error));
    assert_eq!(crossed.setup_findings(), Some(findings));
}

#[test]
fn the_error_message_is_the_readable_list() {
    let message = sample().into_error().message().to_owned();
    let expected = "\
table \"public\".\"docs\" cannot back ownership_mode write_through: 2 blocking findings
setup findings:
- requirement: a unique key on (\"tenant_id\", \"namespace\", \"id\") in that order
  problem: the table has a primary key on (\"id\") only
  blocking: yes
  fix:
    ALTER TABLE \"public\".\"docs\" ADD UNIQUE (\"tenant_id\", \"namespace\", \"id\");
- requirement: the vector extension
  problem: it is not installed
  blocking: yes
  fix:
    CREATE EXTENSION vector;
- requirement: an hnsw index on \"embedding\" with vector_cosine_ops
  problem: there is none: searches scan each scope in full
  blocking: no
  fix:
    CREATE TABLE \"t\" (
      \"id\" text NOT NULL,
    
      \"embedding\" vector(8)
    );
- requirement: a role that may read the table
  problem: no fix statement applies
  blocking: no";
    assert_eq!(message, expected);
}

#[test]
fn text_fields_are_kept_on_one_line_so_they_parse_back() {
    let finding = SetupFinding::blocking("a key\non (a, b)", "  it is\r\n missing  ")
        .with_fix_sql("\n\n  SELECT 1;   \r\n");
    assert_eq!(finding.requirement(), "a key on (a, b)");
    assert_eq!(finding.problem(), "it is missing");
    assert_eq!(finding.fix_sql(), Some("  SELECT 1;"));
    assert_eq!(SetupFinding::advisory("x", "y").with_fix_sql(" \n ").fix_sql(), None);
    let findings = SetupFindings::new("two\nlines", vec![finding]);
    assert_eq!(findings.summary(), "two lines");
    assert_eq!(findings.clone().into_error().setup_findings(), Some(findings));
}

#[test]
fn log_lines_round_trip_and_other_lines_are_not_findings() {
    for finding in sample().findings() {
        let line = finding.to_log_line();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(SetupFinding::from_log_line(&line).as_ref(), Some(finding));
    }
    assert_eq!(SetupFinding::from_log_line("opened pgvector store \"public\".\"docs\""), None);
    assert_eq!(SetupFinding::from_log_line("setup finding: {\"requirement\": 1}"), None);
}

#[test]
fn only_configuration_errors_built_from_findings_carry_them() {
    let text = sample().into_error().message().to_owned();
    assert_eq!(ConnectorError::unavailable(text.clone()).setup_findings(), None);
    assert_eq!(
        ConnectorError::configuration("table \"docs\" does not exist").setup_findings(),
        None
    );
    let truncated = text.rsplit_once('\n').map(|(head, _)| head).unwrap_or_default();
    assert_eq!(ConnectorError::configuration(truncated).setup_findings(), None);
    let none = SetupFindings::new("nothing to change", Vec::new());
    assert!(!none.is_blocking());
    assert_eq!(none.clone().into_error().setup_findings(), Some(none));
    assert!(sample().is_blocking());
}
