//! The journal: round trips, torn tails (cut off and ignored), corruption in the middle
//! (refused with file and offset), compaction.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_codec::{Message, MessageId};
use ixn_store::{Error, Journal, Store};
use std::path::{Path, PathBuf};

/// A test's directory, removed when the test ends (some hold 100 MB).
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Dir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("ixn-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    Dir(d)
}

fn change(n: i32) -> Message {
    Message::new(MessageId(0xF001))
        .with("InteractionId", format!("IX{n}"))
        .with("N", n)
}

/// Where a journal file's good records end (its preallocated space, or torn tail, follows).
fn used(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    ixn_store::read_journal(path, &bytes, &mut |_| {})
        .unwrap()
        .used
}

fn batches(range: std::ops::Range<i32>) -> Vec<Vec<Message>> {
    range.map(|n| vec![change(n), change(n + 1000)]).collect()
}

#[test]
fn appended_batches_come_back_in_order() {
    let d = dir("roundtrip");
    let (mut j, opened) = Journal::open(&d).unwrap();
    assert!(opened.created && opened.changes.is_empty());
    j.append(&batches(0..3)).unwrap();
    j.append(&batches(3..5)).unwrap();
    drop(j);
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.records, 5);
    let want: Vec<Message> = batches(0..5).concat();
    assert_eq!(opened.changes, want);
    assert!(opened.torn_tail.is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_torn_tail_is_cut_off_at_every_cut_point() {
    let d = dir("torn");
    let (mut j, _) = Journal::open(&d).unwrap();
    j.append(&batches(0..2)).unwrap();
    let path = j.path();
    let good = used(&path);
    j.append(&batches(2..3)).unwrap();
    drop(j);
    let full = std::fs::read(&path).unwrap();
    let end = used(&path) as usize;
    assert!(
        full[end..].iter().all(|b| *b == 0) && full.len() > end,
        "preallocated space follows the records"
    );
    // Each cut point twice: the file ending there, and (what a crash in preallocated space
    // leaves) zeros after it.
    for (cut, zeros) in (good as usize + 1..end).flat_map(|c| [(c, false), (c, true)]) {
        let mut torn = full[..cut].to_vec();
        if zeros {
            torn.resize(end + 4096, 0);
        }
        std::fs::write(&path, &torn).unwrap();
        let (mut j, opened) = Journal::open(&d).unwrap();
        if zeros && full[cut..end].iter().all(|b| *b == 0) {
            // The bytes cut off were zeros: the record is whole.
            assert_eq!(opened.changes, batches(0..3).concat(), "cut at {cut}");
            assert!(opened.torn_tail.is_none());
            continue;
        }
        assert_eq!(opened.changes, batches(0..2).concat(), "cut at {cut}");
        assert_eq!(
            opened.torn_tail,
            Some((good, torn.len() as u64 - good)),
            "cut at {cut}"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            good,
            "the tail is truncated"
        );
        // The journal goes on after the cut.
        j.append(&batches(7..8)).unwrap();
        drop(j);
        let (_, again) = Journal::open(&d).unwrap();
        assert_eq!(
            again.changes,
            [batches(0..2).concat(), batches(7..8).concat()].concat()
        );
        assert!(again.torn_tail.is_none());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_garbled_last_record_is_a_torn_tail() {
    let d = dir("garbled");
    let (mut j, _) = Journal::open(&d).unwrap();
    j.append(&batches(0..3)).unwrap();
    let path = j.path();
    drop(j);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = used(&path) as usize - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.changes, batches(0..2).concat());
    assert!(opened.torn_tail.is_some());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn corruption_in_the_middle_stops_the_open_and_names_file_and_offset() {
    let d = dir("corrupt");
    let (mut j, _) = Journal::open(&d).unwrap();
    j.append(&batches(0..1)).unwrap();
    let path = j.path();
    let second = used(&path);
    j.append(&batches(1..4)).unwrap();
    drop(j);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[second as usize + 20] ^= 0x01; // inside the second record's payload
    std::fs::write(&path, &bytes).unwrap();
    let err = Journal::open(&d).unwrap_err();
    match &err {
        Error::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(*offset, second);
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("byte offset {second}")) && text.contains("journal-00000001.log"),
        "{text}"
    );
    // Nothing was truncated: the operator decides.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn compaction_replaces_the_journal_with_the_snapshot() {
    let d = dir("compact");
    let (mut j, _) = Journal::open(&d).unwrap();
    j.append(&batches(0..50)).unwrap();
    let old = j.path();
    let snapshot: Vec<Message> = (0..60_000).map(change).collect();
    j.compact(&snapshot).unwrap();
    assert!(!old.exists());
    j.append(&batches(100..101)).unwrap();
    drop(j);
    // A leftover from an interrupted compaction is ignored and removed.
    std::fs::write(d.join("journal-00000009.tmp"), b"partial").unwrap();
    let (j, opened) = Journal::open(&d).unwrap();
    assert_eq!(
        opened.changes,
        [snapshot, batches(100..101).concat()].concat()
    );
    assert!(
        opened.records > 2,
        "a large snapshot is written as several records"
    );
    assert!(!d.join("journal-00000009.tmp").exists());
    assert!(j.path().ends_with("journal-00000002.log"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_foreign_file_is_refused() {
    let d = dir("foreign");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("journal-00000001.log"), b"hello, world").unwrap();
    let err = Journal::open(&d).unwrap_err();
    assert!(matches!(err, Error::NotAJournal { .. }), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_data_directory_is_opened_by_one_store_at_a_time() {
    let d = dir("locked");
    let (mut first, _) = Journal::open(&d).unwrap();
    first.append(&batches(0..3)).unwrap();
    let before = std::fs::read(first.path()).unwrap();
    match Journal::open(&d) {
        Err(Error::Locked { dir, holder }) => {
            assert_eq!(dir, d.to_path_buf());
            assert_eq!(holder, format!("pid {}", std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let text = Journal::open(&d).unwrap_err().to_string();
    assert!(text.contains(&d.display().to_string()), "{text}");
    assert!(text.contains("another ixn-server"), "{text}");
    // The refused open changed nothing.
    assert_eq!(std::fs::read(first.path()).unwrap(), before);
    drop(first);
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.changes.len(), 6, "reopened once the holder is gone");
}

/// A record whose checksum is right but whose second change does not decode: nothing of it is
/// applied (a record is one request's changes, all or nothing), and the open fails.
#[test]
fn a_record_is_applied_only_once_all_of_it_decoded() {
    let mut frames = ixn_codec::Codec::default()
        .encode_to_bytes(&change(1))
        .unwrap()
        .to_vec();
    frames.extend_from_slice(&[0, 0, 0, 9, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff]);
    let len = u32::try_from(frames.len()).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_be_bytes());
    crc.update(&frames);
    let mut bytes = b"IXNJ\0\0\0\x01IXNR".to_vec();
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&crc.finalize().to_be_bytes());
    bytes.extend_from_slice(&frames);
    // A good record after it: this is corruption, not a torn tail.
    let mut good = Vec::new();
    let d = dir("half-record");
    {
        let (mut j, _) = Journal::open(&d).unwrap();
        j.append(&batches(0..1)).unwrap();
        good.extend_from_slice(&std::fs::read(j.path()).unwrap()[8..]);
    }
    bytes.extend_from_slice(&good);
    let mut applied = Vec::new();
    let err =
        ixn_store::read_journal(&d.join("x.log"), &bytes, &mut |m| applied.push(m)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 8, .. }), "{err}");
    assert!(applied.is_empty(), "applied {applied:?}");
}

/// The writer refuses a record the reader would refuse (one request's changes past
/// MAX_RECORD), instead of writing a journal that cannot be read back.
#[test]
fn the_writer_enforces_the_readers_record_limit() {
    let d = dir("record-limit");
    let (mut j, _) = Journal::open(&d).unwrap();
    let half = ixn_codec::Bytes::from(vec![7u8; ixn_store::MAX_RECORD / 2 + 1]);
    let big = |n: i32| {
        Message::new(MessageId(0xF001))
            .with("N", n)
            .with("B", half.clone())
    };
    let err = j.append(&[vec![big(1), big(2)]]).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
    // Nothing was written; the journal still opens, and a fitting batch is stored.
    j.append(&batches(0..1)).unwrap();
    drop(j);
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.changes.len(), 2);
    // Compaction splits a large snapshot into records that fit.
    let (mut j, _) = Journal::open(&d).unwrap();
    j.compact(&[big(1), big(2), big(3)]).unwrap();
    drop(j);
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!((opened.changes.len(), opened.records), (3, 3));
}

/// A journal written in another format version is refused with a message saying so, not read
/// as if it were this one.
#[test]
fn an_unknown_format_version_is_refused_clearly() {
    let d = dir("version");
    let (mut j, _) = Journal::open(&d).unwrap();
    j.append(&batches(0..1)).unwrap();
    let path = j.path();
    drop(j);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4..8].copy_from_slice(&7u32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Journal::open(&d).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownVersion {
                found: 7,
                supported: ixn_store::VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("format version 7"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");
}

/// A version-1 journal (no preallocated space, the previous release's format) is read, and
/// upgraded in place when opened for writing: what is appended after reads back with it.
#[test]
fn a_version_1_journal_is_read_and_upgraded() {
    let d = dir("v1");
    std::fs::create_dir_all(&d).unwrap();
    let mut bytes = b"IXNJ".to_vec();
    bytes.extend_from_slice(&1u32.to_be_bytes());
    let codec = ixn_codec::Codec::trusting(ixn_codec::Limits::default());
    for batch in batches(0..3) {
        let mut frames = ixn_codec::BytesMut::new();
        for m in &batch {
            codec.encode(m, &mut frames).unwrap();
        }
        let len = u32::try_from(frames.len()).unwrap();
        let mut h = crc32fast::Hasher::new();
        h.update(&len.to_be_bytes());
        h.update(&frames);
        bytes.extend_from_slice(b"IXNR");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&h.finalize().to_be_bytes());
        bytes.extend_from_slice(&frames);
    }
    let path = d.join("journal-00000001.log");
    std::fs::write(&path, &bytes).unwrap();
    let (mut j, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.version, 1);
    assert_eq!(opened.changes, batches(0..3).concat());
    assert_eq!(opened.used, bytes.len() as u64);
    assert!(opened.torn_tail.is_none());
    j.append(&batches(3..4)).unwrap();
    drop(j);
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(
        &on_disk[4..8],
        &ixn_store::VERSION.to_be_bytes(),
        "upgraded"
    );
    let (_, again) = Journal::open(&d).unwrap();
    assert_eq!(again.version, ixn_store::VERSION);
    assert_eq!(again.changes, batches(0..4).concat());
}

/// The file is extended ahead of its records, in steps, not at every append: appends in between
/// write inside it (so their syncs need not change the file's length).
#[test]
fn appends_write_into_preallocated_space() {
    let d = dir("prealloc");
    let (mut j, _) = Journal::open(&d).unwrap();
    let path = j.path();
    let mut lengths = Vec::new();
    for n in 0..2000 {
        j.append(&batches(n..n + 1)).unwrap();
        lengths.push(std::fs::metadata(&path).unwrap().len());
    }
    drop(j);
    let end = used(&path);
    let len = *lengths.last().unwrap();
    assert!(len > end, "zeros follow the records ({len} > {end})");
    assert!(len - end <= ixn_store::PREALLOCATE + 64 * 1024);
    lengths.dedup();
    assert!(
        lengths.len() < 10,
        "2,000 appends grew the file {} times",
        lengths.len()
    );
    let (_, opened) = Journal::open(&d).unwrap();
    assert_eq!(opened.changes, batches(0..2000).concat());
    assert!(opened.torn_tail.is_none());
    assert_eq!(opened.bytes, len);
}
