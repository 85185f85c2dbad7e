//! `kyro quickstart` as a person runs it: the tour prints every step, then the server answers the
//! printed curl's request with the printed token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kyro_e2e::server::free_address;
use kyro_e2e::{kyro_binary, plugin_path, temp_dir};
use serde_json::json;

#[test]
fn the_quickstart_tours_every_mode_and_keeps_serving() {
    let plugin = plugin_path("kyro-connector-qdrant");
    let dir = temp_dir("quickstart");
    let address = free_address();
    let mut child = Command::new(kyro_binary())
        .args(["quickstart", "--dir"])
        .arg(&dir)
        .arg("--plugin")
        .arg(&plugin)
        .args(["--listen", &address.to_string()])
        .env("KYRO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    while let Ok(line) = receiver.recv_timeout(Duration::from_secs(180)) {
        output.push_str(&line);
        output.push('\n');
        if line.starts_with("Press ctrl-c") {
            break;
        }
    }
    assert!(output.contains("Press ctrl-c"), "the quickstart did not finish its tour:\n{output}");
    for expected in [
        "status complete",
        "path context_reuse_hit",
        "omitted refund-policy (stale_pruned)",
        "rev 2",
        "acknowledged at generation",
    ] {
        assert!(output.contains(expected), "missing {expected:?} in:\n{output}");
    }
    assert!(
        !output.contains("Globex refunds"),
        "tenant acme's retrieves never show globex's documents:\n{output}"
    );
    let token =
        output.lines().find_map(|line| line.strip_prefix("data token:")).unwrap().trim().to_owned();
    let query: Vec<f32> = vec![0.125; 64];
    let response = kyro_e2e::http::request(
        address,
        "POST",
        "/v1/context/retrieve",
        Some(&token),
        &[],
        Some(json!({ "query_embedding": query, "scope": { "tenant_id": "globex", "namespace": "support" }, "top_k": 3 }).to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let packet = response.json();
    assert_eq!(packet["items"].as_array().unwrap().len(), 3);
    assert!(
        packet["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["provenance"]["connector"] == "quickstart")
    );
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}
