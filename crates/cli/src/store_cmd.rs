//! `ixn store` and `ixn journal`: moving interactions between stores, and reading, checking
//! and copying a data directory's journal.

use crate::args::JournalCmd;
use ixn_codec::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ixn store migrate`: returns the summary line, or what went wrong.
pub(crate) fn migrate(from: &str, to: &str, replace: bool) -> Result<String, String> {
    use ixn_store::Store as _;
    const LEASE: std::time::Duration = std::time::Duration::from_secs(2);
    let is_put = |m: &Message| m.id == ixn_core::durable::PUT;
    match (ixn_pgstore::is_url(from), ixn_pgstore::is_url(to)) {
        (false, true) => {
            let shown = ixn_pgstore::redact(to);
            if ixn_store::live_journal(Path::new(from))
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!(
                    "{from} holds no journal (journal-NNNNNNNN.log); is it a data directory?"
                ));
            }
            // Locking the directory makes sure no server writes to it meanwhile.
            let mut changes = Vec::new();
            let (journal, opened) = ixn_store::Journal::open_with(from, &mut |m| changes.push(m))
                .map_err(|e| e.to_string())?;
            let target = ixn_pgstore::inspect(to, LEASE).map_err(|e| e.to_string())?;
            if let Some(l) = &target.leader
                && !l.expired
            {
                return Err(format!(
                    "a server is active on {shown} ({}, clients at {}); stop every ixn-server on that database first",
                    l.holder, l.advertised
                ));
            }
            if target.interactions > 0 && !replace {
                return Err(format!(
                    "{shown} already holds {} interactions; give --replace to replace them, or choose an empty database",
                    target.interactions
                ));
            }
            let holder = format!("ixn store migrate (pid {})", std::process::id());
            let (mut store, taken) =
                ixn_pgstore::PgStore::open(to, &holder, "").map_err(|e| e.to_string())?;
            // The journal may hold Moves: fold them into each interaction's Put first.
            let snapshot = ixn_store::Shadow::new(&changes).snapshot();
            store.compact(&snapshot).map_err(|e| e.to_string())?;
            drop(store);
            drop(journal);
            // Give the lease up, so that the first server started on the database takes over
            // at once.
            if let Ok((mut lead, _)) = ixn_pgstore::Leadership::connect(to, &holder, "", LEASE) {
                let _ = lead.release(taken.epoch);
            }
            let moved = ixn_pgstore::inspect(to, LEASE)
                .map_err(|e| e.to_string())?
                .interactions;
            Ok(format!(
                "moved {moved} interactions from {} ({} records) to PostgreSQL {shown}{}",
                opened.path.display(),
                opened.records,
                if replace && target.interactions > 0 {
                    format!(" (replacing the {} it held)", target.interactions)
                } else {
                    String::new()
                }
            ))
        }
        (true, false) => {
            let dir = Path::new(to);
            if ixn_store::live_journal(dir)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err(format!(
                    "{to} already holds a journal; give a new or empty directory"
                ));
            }
            let mut changes = Vec::new();
            ixn_pgstore::read_all(from, &mut |m| changes.push(m)).map_err(|e| e.to_string())?;
            let moved = changes.iter().filter(|m| is_put(m)).count();
            let (mut journal, opened) = ixn_store::Journal::open(dir).map_err(|e| e.to_string())?;
            journal.compact(&changes).map_err(|e| e.to_string())?;
            Ok(format!(
                "moved {moved} interactions from PostgreSQL {} to {}",
                ixn_pgstore::redact(from),
                opened.path.display()
            ))
        }
        _ => Err(format!(
            "--from {from:?} and --to {to:?}: one must be a data directory and the other a PostgreSQL URL (postgres://...)"
        )),
    }
}

/// The live journal of `dir` and its bytes, read once (a compaction renaming the file meanwhile
/// does not change what was read), or the message to print.
fn read_live(dir: &Path) -> Result<(PathBuf, Vec<u8>), String> {
    match ixn_store::live_journal(dir) {
        Ok(Some(path)) => std::fs::read(&path)
            .map(|b| (path.clone(), b))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Ok(None) => Err(format!(
            "{} holds no journal (journal-NNNNNNNN.log); is it a data directory?",
            dir.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) fn journal(action: JournalCmd) -> ExitCode {
    match action {
        JournalCmd::Verify { dir } => {
            let (path, bytes) = match read_live(&dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ixn journal verify: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut changes = 0usize;
            match ixn_store::read_journal(&path, &bytes, &mut |_| changes += 1) {
                Ok(o) => {
                    println!(
                        "{}: format version {}, {} records, {changes} changes, {} bytes ({} of them preallocated)",
                        path.display(),
                        o.version,
                        o.records,
                        o.bytes,
                        o.bytes - o.used
                    );
                    match o.torn_tail {
                        None => {
                            println!("ok: every record is whole and its checksum right");
                            ExitCode::SUCCESS
                        }
                        Some((offset, n)) => {
                            println!(
                                "torn tail: {n} bytes at offset {offset} are an unfinished write (never acknowledged); the next start cuts them off"
                            );
                            ExitCode::from(1)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("ixn journal verify: {e}");
                    ExitCode::from(2)
                }
            }
        }
        JournalCmd::Dump { dir } => {
            let (path, bytes) = match read_live(&dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ixn journal dump: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut out = std::io::stdout().lock();
            let mut n = 0usize;
            let mut failed = false;
            let result = ixn_store::read_journal(&path, &bytes, &mut |change| {
                n += 1;
                if writeln!(out, "{}", dump_line(n, &change)).is_err() {
                    failed = true;
                }
            });
            match result {
                Ok(_) if !failed => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("ixn journal dump: {e}");
                    ExitCode::from(2)
                }
            }
        }
        JournalCmd::Backup { dir, dest } => match backup(&dir, &dest) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ixn journal backup: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Copies the complete records of `dir`'s journal into `dest`, synced.
fn backup(dir: &Path, dest: &Path) -> Result<String, String> {
    let (path, bytes) = read_live(dir)?;
    let opened = ixn_store::read_journal(&path, &bytes, &mut |_| {}).map_err(|e| e.to_string())?;
    // What a start would keep: the records before a torn tail (a write in progress), without
    // the preallocated space after them.
    let keep = usize::try_from(opened.used).unwrap_or(bytes.len());
    if std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} is not empty; give a new or empty directory",
            dest.display()
        ));
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let target = dest.join("journal-00000001.log");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&target)?;
        f.write_all(bytes.get(..keep).unwrap_or_default())?;
        f.sync_all()?;
        std::fs::File::open(dest)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok(format!(
        "backed up {} ({} records, {keep} bytes) to {}; start a server from it with --data-dir {}",
        path.display(),
        opened.records,
        target.display(),
        dest.display()
    ))
}

/// One stored change as a JSON line: its number, its kind by name, the interaction it concerns
/// (or the id generator's state, in numbers), and the change itself.
fn dump_line(n: usize, change: &Message) -> String {
    use ixn_core::durable;
    let mut line = serde_json::Map::new();
    line.insert("change".into(), n.into());
    let kind = durable::kind_name(change.id);
    line.insert("kind".into(), kind.unwrap_or("unknown").into());
    if let Some(id) = change.attrs.get_str(ixn_codec::attr::INTERACTION_ID) {
        line.insert("interaction".into(), id.to_string().into());
    }
    if let Some((prefix, counter)) = durable::ids_of(change) {
        line.insert("id_prefix".into(), prefix.into());
        line.insert("id_counter".into(), counter.into());
    }
    match change.to_json_value() {
        Ok(json) => line.insert("message".into(), json),
        Err(e) => line.insert("error".into(), e.to_string().into()),
    };
    serde_json::Value::Object(line).to_string()
}
