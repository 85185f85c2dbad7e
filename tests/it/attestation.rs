//! Signed certification statements end to end: `kyro plugin keygen`, `kyro certify --attest`,
//! `kyro plugin verify` (which refuses one changed byte of the plugin or the report, and a wrong
//! key), and a host with `[attestation]` that refuses to start on a plugin without a valid
//! statement from its trusted key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kyro_e2e::server::{KyroServer, tokens_section};
use kyro_e2e::{fixture_package, kyro_binary, plugin_path, temp_dir};
use kyro_fixture_support::Defect;

fn kyro(args: &[&str]) -> Output {
    Command::new(kyro_binary()).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A key pair made by `kyro plugin keygen`: (secret, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let output = kyro(&["plugin", "keygen", arg(&prefix)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")))
}

/// The reference fixture copied into `dir`, certified and signed with `key`; returns the copy and
/// its report. The statement is where the host looks by default, next to the copy.
fn certified_copy(dir: &Path, key: &Path) -> (PathBuf, PathBuf) {
    let source = plugin_path(&fixture_package(Defect::None));
    let plugin = dir.join(source.file_name().unwrap());
    std::fs::copy(&source, &plugin).unwrap();
    let store_config = dir.join("store.json");
    let config = serde_json::json!({ "dimension": 8, "filterable_keys": ["lang"] });
    std::fs::write(&store_config, config.to_string()).unwrap();
    let report = dir.join("report.json");
    let output = kyro(&[
        "certify",
        "--plugin",
        arg(&plugin),
        "--store-config",
        arg(&store_config),
        "--report-json",
        arg(&report),
        "--attest",
        arg(key),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        text(&output.stdout).contains("signed statement written to"),
        "{}",
        text(&output.stdout)
    );
    (plugin, report)
}

fn statement_of(plugin: &Path) -> PathBuf {
    PathBuf::from(format!("{}.attestation.json", plugin.display()))
}

fn verify(statement: &Path, key: &Path, plugin: &Path, report: &Path) -> Output {
    kyro(&[
        "plugin",
        "verify",
        arg(statement),
        "--key",
        arg(key),
        "--plugin",
        arg(plugin),
        "--report",
        arg(report),
    ])
}

/// A copy of `path` with one byte flipped.
fn tampered(path: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(path).unwrap();
    let idx = bytes.len() / 2;
    bytes[idx] ^= 0x01;
    let copy = dir.join(format!("tampered-{}", path.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&copy, bytes).unwrap();
    copy
}

#[test]
fn a_statement_verifies_and_one_changed_byte_or_a_wrong_key_is_refused() {
    let dir = temp_dir("attestation-verify");
    let (secret, public) = keygen(&dir, "ci");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is readable by its owner only");
    }
    let again = kyro(&["plugin", "keygen", arg(&dir.join("ci"))]);
    assert_eq!(again.status.code(), Some(1), "keygen never overwrites a key");

    let (plugin, report) = certified_copy(&dir, &secret);
    let statement = statement_of(&plugin);
    let output = verify(&statement, &public, &plugin, &report);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("verified: ") && stdout.contains("fixture-reference/"), "{stdout}");

    let (_, other_public) = keygen(&dir, "other");
    let cases = [
        (verify(&statement, &public, &tampered(&plugin, &dir), &report), "not this one"),
        (verify(&statement, &public, &plugin, &tampered(&report, &dir)), "not this one"),
        (verify(&statement, &other_public, &plugin, &report), "trusted key"),
        (verify(&tampered(&statement, &dir), &public, &plugin, &report), "attestation"),
    ];
    for (output, expected) in cases {
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{stderr}");
    }
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let seed = secret_text.split_whitespace().nth(1).unwrap();
    assert!(!std::fs::read_to_string(&statement).unwrap().contains(seed));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn production_config(public: &Path, plugin: &Path) -> String {
    format!(
        "listen = \"{{listen}}\"\nmode = \"production\"\ndefault_freshness = \"balanced\"\n\
         state = \"sqlite://state.db\"\n[attestation]\npublic_keys = [{public:?}]\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = {plugin:?}\nownership_mode = \"write_through\"\n\
         namespaces = [\"*\"]\n[stores.config]\ndimension = 8\nfilterable_keys = [\"lang\"]\n",
        tokens_section(),
        public = public.display().to_string(),
        plugin = plugin.display().to_string(),
    )
}

#[test]
fn a_host_requiring_attestation_refuses_an_unattested_plugin_and_serves_an_attested_one() {
    let dir = temp_dir("attestation-host");
    let (secret, public) = keygen(&dir, "ci");
    let (plugin, _) = certified_copy(&dir, &secret);
    let statement = statement_of(&plugin);
    let signed = std::fs::read(&statement).unwrap();

    let refused_because = |name: &str, reason: &str| {
        let refused = KyroServer::start(&dir.join(name), &production_config(&public, &plugin))
            .err()
            .unwrap_or_else(|| panic!("{name}: the host started"));
        assert!(refused.contains("attestation refused") && refused.contains(reason), "{refused}");
    };
    std::fs::remove_file(&statement).unwrap();
    refused_because("unattested", "failed to read attestation");
    let (other_secret, _) = keygen(&dir, "other");
    certified_copy(&dir, &other_secret);
    refused_because("other-key", "trusted key");

    std::fs::write(&statement, &signed).unwrap();
    let server =
        KyroServer::start(&dir.join("attested"), &production_config(&public, &plugin)).unwrap();
    let ready = server.get("/readyz", None);
    assert_eq!(ready.status, 200, "{}", text(&ready.body));
    server.kill();
    std::fs::remove_dir_all(&dir).unwrap();
}
