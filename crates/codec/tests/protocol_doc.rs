//! Keeps docs/protocol.md true: its worked examples and tables are checked against the code.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_codec::{ClientType, Codec, ErrorCode, Message, MessageId, WorkbinContentOperation};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The hex bytes of the first ```text block after `marker` (annotations stripped: every
/// whitespace-separated token of exactly two hex digits, before the annotation column).
fn hex_after(marker: &str) -> Vec<u8> {
    let start = DOC.find(marker).expect("marker in protocol.md");
    let block = &DOC[start..];
    let open = block.find("```text\n").unwrap() + 8;
    let close = open + block[open..].find("```").unwrap();
    let mut bytes = Vec::new();
    for line in block[open..close].lines() {
        for token in line.split_whitespace() {
            if token.len() == 2 && token.chars().all(|c| c.is_ascii_hexdigit()) {
                bytes.push(u8::from_str_radix(token, 16).unwrap());
            } else {
                break; // the annotation starts
            }
        }
    }
    bytes
}

#[test]
fn worked_example_request_matches_the_encoder() {
    let msg = Message::from_json(
        r#"{"message": "RequestWorkbinNotifications", "ReferenceId": 3,
            "Workbin": {"WorkbinTypeId": "Drafts", "WorkbinAgentId": "a1"}, "NotifyPropertyChanges": 1}"#,
    )
    .unwrap();
    let bytes = Codec::default().encode_to_bytes(&msg).unwrap();
    assert_eq!(hex_after("is this 119-byte frame"), bytes.to_vec());
    assert_eq!(bytes.len(), 119);
}

#[test]
fn worked_example_ack_matches_the_encoder() {
    let msg = Message::from_json(r#"{"message": "EventAck", "ReferenceId": 3}"#).unwrap();
    let bytes = Codec::default().encode_to_bytes(&msg).unwrap();
    assert_eq!(hex_after("is this 28-byte frame"), bytes.to_vec());
}

#[test]
fn snapshot_example_matches_the_encoder() {
    let msg = Message::from_json(
        r#"{"message": "RequestReleaseSnapshot", "ReferenceId": 7, "SnapshotId": "S1"}"#,
    )
    .unwrap();
    let bytes = Codec::default().encode_to_bytes(&msg).unwrap();
    assert_eq!(hex_after("is this 47-byte"), bytes.to_vec());
    assert_eq!(bytes.len(), 47);
}

#[test]
fn every_message_id_is_in_the_tables() {
    for (id, name, _) in MessageId::ALL {
        let row = format!("| {} | `{:#06x}` | {} |", id.0, id.0, name);
        assert!(DOC.contains(&row), "protocol.md lacks the row {row}");
    }
}

#[test]
fn every_enum_value_and_error_code_is_documented() {
    for (_, int, name) in ClientType::NAMED {
        assert!(
            DOC.contains(&format!("| ClientType | {int} | {name} |")),
            "{name}"
        );
    }
    for (_, int, name) in WorkbinContentOperation::NAMED {
        assert!(
            DOC.contains(&format!("| WorkbinContentOperation | {int} | {name} |")),
            "{name}"
        );
    }
    for (_, int, name) in ErrorCode::NAMED {
        assert!(DOC.contains(&format!("| {int} | {name} |")), "{name}");
    }
}
