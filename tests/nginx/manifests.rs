//! The deployment manifests cannot go stale: each generated ConfigMap holds
//! its plain config files verbatim (istio/render-configmaps.sh writes them),
//! the Istio config is the production sidecar's unchanged, and every
//! gatelog config passes `gatelog --dry-run` as extracted from the YAML.

use std::process::Command;

use super::server::nginx_binary;
use super::ROOT;
use crate::support::*;

/// (ConfigMap manifest, directory of the files it embeds, its keys).
const CONFIGMAPS: &[(&str, &str, &[&str])] = &[
    ("istio/configmap-gatelog.yaml", "istio/config", &["fluent-bit.conf", "parsers.conf", "create-log-file-path.lua"]),
    ("istio/configmap-nginx.yaml", "istio/config", &["nginx.conf"]),
    (
        "deploy/kubernetes/configmap-gatelog.yaml",
        "deploy/kubernetes/config",
        &["fluent-bit.conf", "parsers.conf", "create-log-file-path.lua"],
    ),
    ("deploy/kubernetes/configmap-nginx.yaml", "deploy/kubernetes/config", &["nginx.conf"]),
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The literal block scalar `  key: |` of a ConfigMap's `data`, as written
/// by render-configmaps.sh (content indented by four spaces, clipped).
fn configmap_entry(yaml: &str, key: &str) -> Option<String> {
    let header = format!("  {key}: |");
    let mut lines = yaml.lines().skip_while(|l| *l != header);
    lines.next()?;
    let mut out = String::new();
    for line in lines {
        if line.is_empty() {
            out.push('\n');
        } else if let Some(content) = line.strip_prefix("    ") {
            out.push_str(content);
            out.push('\n');
        } else {
            break;
        }
    }
    // `|` keeps exactly one final newline.
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    Some(out)
}

#[test]
fn configmaps_embed_the_config_files_verbatim() {
    for (manifest, dir, keys) in CONFIGMAPS {
        let yaml = read(manifest);
        for key in *keys {
            let embedded = configmap_entry(&yaml, key).unwrap_or_else(|| panic!("{manifest} has no {key}"));
            assert!(
                embedded == read(&format!("{dir}/{key}")),
                "{manifest}: {key} differs from {dir}/{key}; run istio/render-configmaps.sh"
            );
        }
    }
}

#[test]
fn the_istio_config_is_the_production_sidecar_config_unchanged() {
    for f in ["fluent-bit.conf", "parsers.conf", "create-log-file-path.lua"] {
        assert_eq!(read(&format!("istio/config/{f}")), read(&format!("tests/fixtures/fluent-bit-sidecar/{f}")), "{f}");
    }
    // The ConfigMap's nginx logs exactly the production fields.
    let production = read("tests/fixtures/fluent-bit-sidecar/nginx-log.conf");
    assert!(production.contains(&super::server::configmap_log_format()), "log_format differs from nginx-log.conf");
}

fn dry_run(files: &[(&str, String)]) -> (bool, String) {
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let dir = temp_files(&refs);
    let out = Command::new(BIN).args(["--dry-run", "-c"]).arg(dir.path().join("fluent-bit.conf")).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_gatelog_configmap_passes_dry_run_as_extracted_from_the_yaml() {
    for (manifest, _, keys) in CONFIGMAPS.iter().filter(|(_, _, keys)| keys.contains(&"fluent-bit.conf")) {
        let yaml = read(manifest);
        let files: Vec<(&str, String)> = keys.iter().map(|k| (*k, configmap_entry(&yaml, k).unwrap())).collect();
        let (ok, err) = dry_run(&files);
        assert!(ok && err.contains("configuration test is successful"), "{manifest}: {err}");
        // Only the Istio config keeps KEEP true (unchanged from production),
        // and --dry-run says what that costs.
        let keeps = manifest.starts_with("istio/");
        assert_eq!(err.contains("every record is written twice"), keeps, "{manifest}: {err}");
    }
    // The loopback UDP variant, beside the same parsers and script.
    let files = vec![
        ("fluent-bit.conf", read("istio/udp/fluent-bit.conf")),
        ("parsers.conf", read("istio/config/parsers.conf")),
        ("create-log-file-path.lua", read("istio/config/create-log-file-path.lua")),
    ];
    let (ok, err) = dry_run(&files);
    assert!(ok, "istio/udp/fluent-bit.conf: {err}");
}

#[test]
fn every_nginx_configmap_passes_nginx_t() {
    let Some(bin) = nginx_binary() else {
        // The end-to-end test enforces nginx's presence in CI.
        eprintln!("every_nginx_configmap_passes_nginx_t: skipped, no nginx binary");
        return;
    };
    // The Istio one names `user root;`, which `nginx -t` checks only as root.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for manifest in ["istio/configmap-nginx.yaml", "deploy/kubernetes/configmap-nginx.yaml"] {
        let conf = configmap_entry(&read(manifest), "nginx.conf").unwrap();
        let conf = if root { conf } else { conf.replace("user root;", "") };
        let dir = temp_files(&[("nginx.conf", &conf)]);
        let out = Command::new(&bin)
            .arg("-t")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{manifest}: {err}");
    }
}

#[test]
fn configmap_entry_reads_blank_lines_and_stops_at_the_next_key() {
    let yaml = "data:\n  a.conf: |\n    [A]\n\n        k v\n  b.conf: |\n    x\n";
    assert_eq!(configmap_entry(yaml, "a.conf").unwrap(), "[A]\n\n    k v\n");
    assert_eq!(configmap_entry(yaml, "b.conf").unwrap(), "x\n");
    assert_eq!(configmap_entry(yaml, "c.conf"), None);
}
