//! Writes the committed seed corpus of the codec's fuzz targets (`fuzz/seeds/`).
//!
//! `cargo run -p ixn-codec --example fuzz_seeds` (from the workspace root) rewrites it; the
//! seeds are a few frames of each shape docs/protocol.md defines, so the fuzzers start from valid
//! input and mutate from there.

use ixn_codec::{Codec, Message};
use std::path::Path;

const SEEDS: &[(&str, &str)] = &[
    (
        "register",
        r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
    ),
    (
        "login",
        r#"{"message":"RequestAgentLogin","ReferenceId":2,"TenantId":101,"AgentId":"a1","PlaceId":"p1","MediaList":{"email":1,"chat":1}}"#,
    ),
    (
        "subscribe",
        r#"{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"},"NotifyPropertyChanges":1}"#,
    ),
    (
        "submit",
        r#"{"message":"RequestSubmit","ReferenceId":5,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","UserData":{"Subject":"Hi","Blob":{"$binary":"AAEC"},"Nested":{"a":{"b":1}}}}"#,
    ),
    (
        "ack",
        r#"{"message":"EventAck","ReferenceId":3,"ProxyClientId":2}"#,
    ),
    (
        "changed",
        r#"{"message":"EventWorkbinContentChanged","Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"},"WorkbinContentOperation":"PlacedIn","Interaction":{"InteractionId":"IX01","MediaType":"email"}}"#,
    ),
    ("unknown", r#"{"message":4242,"X":-1,"X":"dup"}"#),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let codec = Codec::default();
    let mut stream = Vec::new();
    for (name, json) in SEEDS {
        let frame = codec.encode_to_bytes(&Message::from_json(json)?)?;
        for target in ["decode_frame", "roundtrip"] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(name), &frame)?;
        }
        stream.extend_from_slice(&frame);
    }
    let dir = root.join("decoder_chunked");
    std::fs::create_dir_all(&dir)?;
    for seed in [0u8, 0x5a, 0xff] {
        let mut input = vec![seed];
        input.extend_from_slice(&stream);
        std::fs::write(dir.join(format!("stream-{seed:02x}")), &input)?;
    }
    Ok(())
}
