//! The Docker Compose file parses and has what compose/README.md promises (no Docker engine
//! runs here, so this is as far as a test can take it).

#[test]
fn compose_file_has_primary_two_standbys_exporter_and_prometheus() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/compose/docker-compose.yml"
    ))
    .unwrap();
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("docker-compose.yml is not valid YAML");
    let services = doc["services"].as_mapping().expect("no services");
    for (name, port) in [
        ("primary", "5432:5432"),
        ("standby1", "5433:5432"),
        ("standby2", "5434:5432"),
    ] {
        let svc = &doc["services"][name];
        assert!(svc.is_mapping(), "no service {name}");
        let ports: Vec<&str> = svc["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert_eq!(ports, [port], "{name}");
        let image = svc["image"]
            .as_str()
            .or_else(|| doc["x-standby"]["image"].as_str());
        assert_eq!(image, Some("postgres:15"), "{name}");
    }
    assert!(services.contains_key("exporter") && services.contains_key("prometheus"));
    for script in ["primary-init.sh", "standby-entrypoint.sh"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/compose/scripts/").to_string() + script;
        assert!(std::path::Path::new(&path).is_file(), "{script} missing");
    }
}
