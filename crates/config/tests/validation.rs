//! Configuration errors name the file, the entry and its line, and say what would be right.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_config::{Config, ConfigError, DEMO_TOML, Limits, OwnerKind};

fn err(toml: &str) -> String {
    Config::from_toml_str(toml, "test.toml")
        .unwrap_err()
        .to_string()
}

const BASE: &str = r#"
[[tenant]]
id = 101
name = "Environment"

[[agent_group]]
name = "Sales"

[[place_group]]
name = "Floor1"
"#;

#[test]
fn demo_configuration_is_valid_and_matches_the_conformance_one() {
    let demo = Config::from_toml_str(DEMO_TOML, "demo.toml").unwrap();
    assert_eq!(
        demo.limits,
        Limits::default(),
        "demo.toml lists every limit at its default"
    );
    let conformance_config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/config.json");
    let conf = Config::load(conformance_config).unwrap();
    // The demo adds password hashes (the web API's sign-in) to the conformance agents.
    let without_passwords = |agents: &[ixn_config::AgentEntry]| {
        agents
            .iter()
            .map(|a| ixn_config::AgentEntry {
                password_hash: None,
                ..a.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_passwords(&demo.file.agent),
        without_passwords(&conf.file.agent)
    );
    assert!(demo.agents().all(|(_, a)| a.password_hash.is_some()));
    assert_eq!(demo.http_listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(demo.file.workbin, conf.file.workbin);
    assert_eq!(demo.file.place, conf.file.place);
    assert_eq!(demo.file.application, conf.file.application);
    assert_eq!(demo.file.queue, conf.file.queue);
}

#[test]
fn lookups_work() {
    let demo = Config::from_toml_str(DEMO_TOML, "demo.toml").unwrap();
    let a1 = demo.agent("a1").unwrap();
    assert_eq!(
        demo.agent_by_user_id("802396AE32494A8B8A617A9103D968BB"),
        Some(a1)
    );
    let team = demo.workbin("Team").unwrap();
    assert_eq!(demo[team].owner, OwnerKind::AgentGroup);
    assert_eq!(
        demo.workbin_by_uuid("6C715FA9-DE16-4D23-B07C-CBCB1CAF3E07"),
        Some(team)
    );
    assert!(demo.application_allowed("gws", ixn_config::AppType::Proxy));
    assert!(!demo.application_allowed("gws", ixn_config::AppType::MediaServer));
}

#[test]
fn unknown_group_names_the_agent_and_its_line() {
    let text = format!(
        "{BASE}\n[[agent]]\nid = \"a9\"\nuser_id = \"802396ae32494a8b8a617a9103d968bb\"\ntenant = 101\ngroups = [\"Salse\"]\n"
    );
    let e = err(&text);
    assert_eq!(
        e,
        "test.toml line 12: agent \"a9\": groups names unknown agent_group \"Salse\" (known: Sales)"
    );
}

#[test]
fn each_mistake_gets_its_own_message() {
    let agent = |id: &str, user: &str, tenant: i32| {
        format!("\n[[agent]]\nid = \"{id}\"\nuser_id = \"{user}\"\ntenant = {tenant}\n")
    };
    let u1 = "802396ae32494a8b8a617a9103d968bb";
    let u2 = "e6f2ad1b26ea4e9b8dd907eabe167522";
    let cases = [
        (
            format!("{BASE}{}", agent("a1", u1, 7)),
            "agent \"a1\": unknown tenant 7 (known: 101)",
        ),
        (
            format!("{BASE}{}{}", agent("a1", u1, 101), agent("a1", u2, 101)),
            "line 17: agent \"a1\": duplicate agent id",
        ),
        (
            format!("{BASE}{}{}", agent("a1", u1, 101), agent("a2", u1, 101)),
            "duplicate user_id",
        ),
        (
            format!("{BASE}{}", agent("a1", "xyz", 101)),
            "user_id \"xyz\" must be 32 hex digits",
        ),
        (
            format!("{BASE}\n[[place]]\nid = \"p1\"\ngroups = [\"Nope\"]\n"),
            "unknown place_group \"Nope\"",
        ),
        (
            format!("{BASE}\n[[workbin]]\nname = \"W\"\nowner = \"Desk\"\ntenant = 101\n"),
            "unknown variant `Desk`",
        ),
        (
            format!(
                "{BASE}\n[[workbin]]\nname = \"W\"\nowner = \"Agent\"\ntenant = 101\nid = \"nope\"\n"
            ),
            "id \"nope\" is not a UUID",
        ),
        (
            format!(
                "{BASE}\n[[workbin]]\nname = \"W\"\nowner = \"Agent\"\ntenant = 101\n[[workbin]]\nname = \"W\"\nowner = \"Place\"\ntenant = 101\n"
            ),
            "duplicate workbin name",
        ),
        (
            format!("{BASE}\n[[queue]]\nname = \"Q\"\ntenant = 5\n"),
            "queue \"Q\": unknown tenant 5",
        ),
        (
            format!("{BASE}\n[[agent_group]]\nname = \"Sales\"\n"),
            "duplicate agent_group name",
        ),
        (
            format!("{BASE}\n[[place_group]]\nname = \"Sales\"\n"),
            "an agent_group has the same name",
        ),
        (
            format!("{BASE}\n[[application]]\nname = \"d\"\ntype = \"Desktop\"\n"),
            "unknown variant `Desktop`",
        ),
        (
            format!("{BASE}\n[limits]\nmax_frame_len = 10\n"),
            "line 12: limits.max_frame_len: 10 is too small: use at least 64",
        ),
        (
            format!(
                "{BASE}\n[limits]\nmax_frame_len = 100000000\nmax_interaction_bytes = 40000000\n"
            ),
            "limits.max_interaction_bytes: 40000000 is too large: use at most 33554432",
        ),
        (
            format!("{BASE}\n[limits]\nmax_frames = 10\n"),
            "unknown field `max_frames`",
        ),
        (
            format!("{BASE}\n[[tenant]]\nid = 101\nname = \"again\"\n"),
            "tenant 101: duplicate tenant id",
        ),
        (
            "[[tenant]\nid = 1".to_owned(),
            "test.toml: TOML parse error at line 1",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "want {want:?} in {e:?}");
        assert!(e.starts_with("test.toml"), "{e}");
    }
}

#[test]
fn json_has_the_same_schema_and_names_the_entry() {
    let e = Config::from_json_str(
        r#"{"tenant":[{"id":1,"name":"t"}],"queue":[{"name":"Q","tenant":2}]}"#,
        "c.json",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "c.json: queue \"Q\": unknown tenant 2 (known: 1)");
    let e = Config::from_json_str(r#"{"tenants":[]}"#, "c.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown field `tenants`") && e.contains("line 1"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let e = Config::load("/nonexistent/ixn.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with("cannot read configuration file /nonexistent/ixn.toml")
    );
}

#[test]
fn workbin_ids_are_derived_stably_from_names() {
    let text = format!("{BASE}\n[[workbin]]\nname = \"W\"\nowner = \"Agent\"\ntenant = 101\n");
    let a = Config::from_toml_str(&text, "a").unwrap();
    let b = Config::from_toml_str(&text, "b").unwrap();
    let first = |c: &Config| c.workbins().next().unwrap().1.uuid.clone();
    assert_eq!(first(&a), first(&b));
    assert_eq!(first(&a).len(), 36);
}

#[test]
fn synthetic_configurations_validate() {
    let file = ixn_config::ConfigFile::synthetic(1000, 10, Limits::default());
    let c = Config::validate(file).unwrap();
    assert_eq!(c.agents().len(), 1000);
    assert_eq!(c.agent_groups().len(), 10);
    assert!(c.application_allowed("media", ixn_config::AppType::MediaServer));
    assert_eq!(c.workbins().len(), 7);
}

#[test]
fn docs_list_every_limit_with_its_default() {
    let doc = include_str!("../../../docs/configuration.md");
    let defaults = serde_json::to_value(Limits::default()).unwrap();
    for (name, value) in defaults.as_object().unwrap() {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
    }
}

#[test]
fn docs_list_every_http_setting_with_its_default() {
    let doc = include_str!("../../../docs/configuration.md");
    let defaults = serde_json::to_value(ixn_config::Http::default()).unwrap();
    for (name, value) in defaults.as_object().unwrap() {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
    }
}

#[test]
fn http_mistakes_name_the_key_and_line() {
    let text = format!("{BASE}\n[http]\nlisten = \"localhost\"\n");
    let e = Config::from_toml_str(&text, "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("http.listen") && e.contains("line"), "{e}");
    let text = format!("{BASE}\n[http]\nnotifications_path = \"cometd/\"\n");
    let e = Config::from_toml_str(&text, "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("http.notifications_path"), "{e}");
    let text = format!("{BASE}\n[http]\nconnect_timeout_ms = 5\n");
    let e = Config::from_toml_str(&text, "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("http.connect_timeout_ms") && e.contains("at least 100"),
        "{e}"
    );
}

#[test]
fn password_hashes_must_be_argon2_phc_strings() {
    let agent = |hash: &str| {
        format!(
            "{BASE}\n[[agent]]\nid = \"a9\"\nuser_id = \"802396ae32494a8b8a617a9103d968bb\"\ntenant = 101\npassword_hash = \"{hash}\"\n"
        )
    };
    let e = Config::from_toml_str(&agent("hunter2"), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("agent \"a9\"") && e.contains("password_hash"),
        "{e}"
    );
    let e = Config::from_toml_str(
        &agent("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("only argon2"), "{e}");
    let demo = Config::from_toml_str(DEMO_TOML, "demo.toml").unwrap();
    let good = demo
        .agents()
        .next()
        .unwrap()
        .1
        .password_hash
        .clone()
        .unwrap();
    Config::from_toml_str(&agent(&good), "x.toml").unwrap();
}

#[test]
fn the_store_section_is_checked_and_named() {
    let e = err(&format!("{BASE}\n[store]\nkind = \"postgres\"\n"));
    assert!(e.contains("store.url") && e.contains("postgres://"), "{e}");
    let e = err(&format!(
        "{BASE}\n[store]\nkind = \"postgres\"\nurl = \"postgres://db/ixn\"\nlease_ms = 50\n"
    ));
    assert!(
        e.contains("store.lease_ms") && e.contains("at least 200"),
        "{e}"
    );
    let e = err(&format!("{BASE}\n[store]\nkind = \"sqlite\"\n"));
    assert!(e.contains("sqlite") && e.contains("postgres"), "{e}");
    let ok = Config::from_toml_str(
        &format!(
            "{BASE}\n[store]\nkind = \"postgres\"\nurl = \"postgres://db/ixn\"\nadvertise = \"a:7000\"\n"
        ),
        "test.toml",
    )
    .unwrap();
    let store = ok.store.unwrap();
    assert_eq!(store.kind, ixn_config::StoreKind::Postgres);
    assert_eq!(store.advertise.as_deref(), Some("a:7000"));
}

/// Every mistake is reported at once, each with its entry and line: fixing one does not reveal
/// the next only at the next start.
#[test]
fn every_mistake_is_reported_at_once() {
    let text = format!(
        "{BASE}\n[limits]\nmax_frame_len = 10\n\n[[queue]]\nname = \"Lost\"\ntenant = 7\n\n[[agent]]\nid = \"zz\"\nuser_id = \"nothex\"\ntenant = 101\ngroups = [\"Nobody\"]\n"
    );
    let e = Config::from_toml_str(&text, "test.toml").unwrap_err();
    let ConfigError::Several(all) = &e else {
        panic!("several problems, not {e:?}");
    };
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("test.toml: {} problems:", all.len())),
        "{shown}"
    );
    for want in [
        "limits.max_frame_len: 10 is too small",
        "queue \"Lost\": unknown tenant 7",
        "agent \"zz\": user_id \"nothex\" must be 32 hex digits",
        "agent \"zz\": groups names unknown agent_group \"Nobody\"",
    ] {
        assert!(shown.contains(want), "want {want:?} in {shown}");
    }
    assert!(
        shown
            .lines()
            .skip(1)
            .all(|l| l.starts_with("  test.toml line ")),
        "each problem on its own line with its line number: {shown}"
    );
}
