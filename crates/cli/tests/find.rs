//! `ixn find` and `ixn queue`, run as a user would against a real server: the README's
//! commands, paging through more than a page, a lock held by someone else, and a bad condition
//! shown with a caret under its position.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod common;
use common::*;

const FIND: &str = "MediaType = 'email' AND UserData.Subject LIKE 'Hello%'";

fn submit(addr: &str, id: &str, media: &str, queue: &str, subject: &str) {
    let msg = format!(
        r#"{{"message":"RequestSubmit","TenantId":101,"MediaType":"{media}","InteractionType":"Inbound","Queue":"{queue}","InteractionId":"{id}","UserData":{{"Subject":"{subject}"}}}}"#
    );
    let (code, out, err) = ixn(&["send", "--addr", addr, "--as", "emailsrv:MediaServer", &msg]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn find_and_queue_print_tables_page_through_and_point_at_mistakes() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert!(
        readme.contains("ixn queue Inbound"),
        "README shows ixn queue"
    );
    assert!(
        readme.contains(&format!("ixn find \"{FIND}\"")),
        "README shows ixn find"
    );

    let (_server, addr) = server();
    for i in 0..7 {
        submit(
            &addr,
            &format!("IX-Q-{i}"),
            "email",
            "Inbound",
            &format!("Hello {i}"),
        );
    }
    submit(&addr, "IX-CHAT", "chat", "Inbound", "Hello chat");
    submit(&addr, "IX-OUT", "email", "Outbound", "Bye");

    // The queue, oldest first, read three at a time.
    let (code, out, err) = ixn(&["queue", "Inbound", "--addr", &addr, "--page-size", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("SUBJECT"),
        "{out}"
    );
    assert_eq!(lines.len(), 1 + 8 + 1, "{out}");
    // Oldest first (ReceivedAt has whole seconds), then by id.
    let read: Vec<(&str, &str)> = lines[1..9]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5], f[0])
        })
        .collect();
    let mut sorted = read.clone();
    sorted.sort_unstable();
    assert_eq!(read, sorted, "{out}");
    assert!(
        lines[1..9].iter().all(|l| l.contains("queue Inbound")),
        "{out}"
    );
    assert!(!out.contains("IX-OUT"), "{out}");
    assert_eq!(lines[9], "8 interactions");

    // A condition and an order; a limit.
    let (code, out, err) = ixn(&[
        "find",
        FIND,
        "--order",
        "InteractionId DESC",
        "--limit",
        "2",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["IX-Q-6", "IX-Q-5", "2"], "{out}");

    // --lock: the table marks what this command holds locked while it runs.
    let (code, out, err) = ixn(&[
        "find",
        "InteractionId = 'IX-Q-0'",
        "--lock",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("[locked]") && out.contains("1 interaction locked (0 left out"),
        "{out}"
    );

    // Mistakes: a caret under the position, exit 2, nothing sent.
    let (code, out, err) = ixn(&[
        "find",
        "MediaType = 'email' AND Colour = 'red'",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 2, "{out}{err}");
    let caret = err
        .lines()
        .find(|l| l.trim_start().starts_with('^'))
        .unwrap_or_default();
    let text = err
        .lines()
        .find(|l| l.contains("Colour = 'red'"))
        .unwrap_or_default();
    assert_eq!(caret.find('^'), text.find("Colour"), "{err}");
    assert!(
        err.contains("unknown name `Colour`") && err.contains("MediaType"),
        "{err}"
    );
    let (code, _, err) = ixn(&[
        "find",
        "MediaType = 'email'",
        "--order",
        "Colour",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 2, "{err}");
    // An agent application without an agent is told what to do.
    let (code, _, err) = ixn(&[
        "queue",
        "Inbound",
        "--as",
        "desk:AgentApplication",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("AgentNotLoggedIn") && err.contains("--agent A --place P"),
        "{err}"
    );
    // An agent who supervises nobody sees no queue; a supervisor does.
    let (code, out, err) = ixn(&[
        "queue",
        "Inbound",
        "--as",
        "desk:AgentApplication",
        "--agent",
        "a1",
        "--place",
        "p1",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("0 interactions\n"), "{out}");
    let (code, out, err) = ixn(&[
        "queue",
        "Inbound",
        "--as",
        "desk:AgentApplication",
        "--agent",
        "sup1",
        "--place",
        "p4",
        "--addr",
        &addr,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("8 interactions\n"), "{out}");
}
