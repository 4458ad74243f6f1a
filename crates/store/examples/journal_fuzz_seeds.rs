//! Writes the seed corpus of the `journal_read` fuzz target (`fuzz/seeds/journal_read/`):
//! journals written by the journal itself (appends, a compaction, a torn tail), so the fuzzer
//! starts from valid files and mutates from there.
//!
//! `cargo run -p ixn-store --example journal_fuzz_seeds` (from the workspace root) rewrites it.

use ixn_codec::{Message, MessageId};
use ixn_store::{Journal, Store};
use std::path::Path;

fn change(n: i32) -> Message {
    Message::new(MessageId(0xF001))
        .with("InteractionId", format!("IX{n}"))
        .with("N", n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/journal_read");
    std::fs::create_dir_all(&out)?;
    let dir = std::env::temp_dir().join(format!("ixn-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut j, _) = Journal::open(&dir)?;
    j.append(&[vec![change(1), change(2)], vec![change(3)]])?;
    j.append(&[vec![
        Message::new(MessageId(0xF002)).with("InteractionId", "IX1"),
    ]])?;
    let appended = std::fs::read(j.path())?;
    std::fs::write(out.join("appended"), &appended)?;
    // A torn tail: the last record cut in the middle.
    let torn = appended
        .get(..appended.len().saturating_sub(5))
        .unwrap_or_default();
    std::fs::write(out.join("torn"), torn)?;
    j.compact(&[change(2), change(3)])?;
    std::fs::write(out.join("compacted"), std::fs::read(j.path())?)?;
    drop(j);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
