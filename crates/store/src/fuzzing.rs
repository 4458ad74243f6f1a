//! The `journal_read` fuzz target's body (built for tests and fuzzing only): any bytes read as
//! a journal give changes or an error, never a panic, and what reading reports is consistent.

use crate::journal::read_journal;
use std::path::Path;

/// Reads `data` as a journal file. Oracles: a torn tail lies inside the data and reading only
/// the part before it gives the same changes, the same records and no torn tail; an error is
/// one of the store's, naming the file.
pub fn journal_read(data: &[u8]) {
    let path = Path::new("fuzz.log");
    let mut first = Vec::new();
    match read_journal(path, data, &mut |m| first.push(m)) {
        Ok(opened) => {
            assert_eq!(opened.bytes, data.len() as u64);
            let used = usize::try_from(opened.used).unwrap_or(usize::MAX);
            assert!(used <= data.len());
            if opened.torn_tail.is_none() {
                // After the records, only preallocated space; without it the same records.
                assert!(data.get(used..).unwrap_or_default().iter().all(|b| *b == 0));
                let mut again = Vec::new();
                let head = read_journal(path, data.get(..used).unwrap_or_default(), &mut |m| {
                    again.push(m)
                });
                assert!(
                    head.as_ref()
                        .is_ok_and(|h| h.records == opened.records && h.used == opened.used),
                    "the records without the zeros after them: {head:?}"
                );
                assert_eq!(again, first);
            }
            if let Some((at, dropped)) = opened.torn_tail {
                let at = usize::try_from(at).unwrap_or(usize::MAX);
                assert!(at <= data.len() && at as u64 + dropped == data.len() as u64);
                let mut again = Vec::new();
                let kept = read_journal(path, data.get(..at).unwrap_or_default(), &mut |m| {
                    again.push(m)
                });
                assert!(kept.is_ok(), "the part before a torn tail: {kept:?}");
                let Ok(kept) = kept else { return };
                assert_eq!(kept.torn_tail, None);
                assert_eq!(kept.records, opened.records);
                assert_eq!(again, first, "the part before the torn tail reads the same");
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz.log"), "{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seed corpus and every regression replay clean on stable.
    #[test]
    fn journal_read_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seen = 0;
        for kind in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(kind).join("journal_read")) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name() == ".gitkeep" {
                    continue;
                }
                let data = std::fs::read(e.path()).unwrap_or_default();
                journal_read(&data);
                seen += 1;
            }
        }
        assert!(seen >= 2, "the journal_read seed corpus is missing");
    }
}
