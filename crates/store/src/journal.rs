//! The journal: an append-only file of checksummed records (see the crate documentation for the
//! format, recovery and compaction).

use crate::error::{Error, io};
use crate::lock::DirLock;
use crate::store::{FLUSH_LANES, Flush, Store};
use crc32fast::Hasher;
use ixn_codec::{BytesMut, Codec, Limits, Message};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FILE_MAGIC: &[u8; 4] = b"IXNJ";
/// The journal format version this program writes (in the file header). Version 2 adds
/// preallocated space (zero bytes after the last record) and Move changes; it reads version 1
/// too, and upgrades a version-1 journal's header when it opens it for writing (every version-1
/// file is a valid version-2 file).
pub const VERSION: u32 = 2;
/// The oldest journal format version this program reads.
pub const OLDEST_VERSION: u32 = 1;
const RECORD_MAGIC: &[u8; 4] = b"IXNR";
const HEADER: usize = 8;
const RECORD_HEADER: usize = 12;
/// Largest record, written or read (a snapshot is written as many records of about 1 MiB;
/// a single request's changes are far smaller, and are refused if not).
pub const MAX_RECORD: usize = 64 * 1024 * 1024;
/// Target size of the records a compaction writes.
const CHUNK: usize = 1024 * 1024;
/// The most the journal file is extended by at a time, ahead of its records, written with zeros
/// and synced once: a sync of the records that follow then writes data blocks only (`fdatasync`
/// on a file that does not grow needs no inode update), which on ext4 makes it about a third
/// faster. A small journal is extended by as much as it holds (at least 64 KiB), so an idle or
/// young journal stays small.
pub const PREALLOCATE: u64 = 4 * 1024 * 1024;
const MIN_PREALLOCATE: u64 = 64 * 1024;

/// What [`Journal::open`] found.
#[derive(Debug, Default)]
pub struct Opened {
    /// Every stored change, in order (empty with [`Journal::open_with`]).
    pub changes: Vec<Message>,
    /// Records read.
    pub records: usize,
    /// Bytes of journal read (the file's length).
    pub bytes: u64,
    /// Bytes holding the header and the good records; after them come preallocated space
    /// (zeros) or a torn tail.
    pub used: u64,
    /// The format version found in the file's header (a new journal: [`VERSION`]).
    pub version: u32,
    /// A torn tail that was cut off: (offset, bytes dropped).
    pub torn_tail: Option<(u64, u64)>,
    /// The journal file used (created if the directory was empty).
    pub path: PathBuf,
    /// True when the directory held no journal.
    pub created: bool,
}

/// The journal store.
#[derive(Debug)]
pub struct Journal {
    /// Held for the journal's whole life: no other store opens the directory meanwhile.
    _lock: DirLock,
    dir: PathBuf,
    generation: u64,
    file: File,
    /// Where the next record goes (the end of the good records; the file cursor stays there).
    end: u64,
    /// The file's length: zeros from `end` to here.
    allocated: u64,
    /// The file opened once more per flush lane (see [`Flush`]).
    lanes: Arc<[File; FLUSH_LANES]>,
    codec: Codec,
    buf: BytesMut,
}

/// The live journal file of a data directory (the highest generation), without locking or
/// changing anything: `None` when the directory holds no journal (or does not exist).
pub fn live_journal(dir: &Path) -> Result<Option<PathBuf>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut best: Option<u64> = None;
    for entry in entries {
        let name = entry.map_err(io(dir))?.file_name();
        let generation = name
            .to_string_lossy()
            .strip_prefix("journal-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|g| g.parse::<u64>().ok());
        if let Some(g) = generation {
            best = Some(best.map_or(g, |b| b.max(g)));
        }
    }
    Ok(best.map(|g| dir.join(journal_name(g))))
}

/// The newest journal generation in `dir`, if any. Older generations are complete leftovers of
/// a compaction that finished, and an unfinished compaction's file is incomplete: both are
/// removed.
fn newest_generation(dir: &Path) -> Result<Option<u64>, Error> {
    let mut generations = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(g) = name
            .strip_prefix("journal-")
            .and_then(|r| r.strip_suffix(".log"))
        {
            if let Ok(g) = g.parse::<u64>() {
                generations.push(g);
            }
        } else if name.starts_with("journal-") && name.ends_with(".tmp") {
            // An unfinished compaction: the previous generation is still complete.
            let _ = fs::remove_file(dir.join(&*name));
        }
    }
    generations.sort_unstable();
    let Some((&newest, older)) = generations.split_last() else {
        return Ok(None);
    };
    for g in older {
        let _ = fs::remove_file(dir.join(journal_name(*g)));
    }
    Ok(Some(newest))
}

fn journal_name(generation: u64) -> String {
    format!("journal-{generation:08}.log")
}

/// The codec for stored changes: no frame limit beyond a record's, and no bound on what a frame
/// may decode to (whatever was stored can be read back).
fn codec() -> Codec {
    Codec::trusting(Limits {
        max_frame_len: MAX_RECORD,
        max_depth: ixn_codec::MAX_DEPTH_CAP,
    })
}

fn crc(len: u32, payload: &[u8]) -> u32 {
    let mut h = Hasher::new();
    h.update(&len.to_be_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one record holding `frames` (already encoded) to `buf`; a record larger than
/// [`MAX_RECORD`] (which reading would refuse) is not written.
fn put_record(buf: &mut BytesMut, frames: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(frames.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD)
        .ok_or(Error::RecordTooLarge {
            len: frames.len(),
            max: MAX_RECORD,
        })?;
    buf.extend_from_slice(RECORD_MAGIC);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&crc(len, frames).to_be_bytes());
    buf.extend_from_slice(frames);
    Ok(())
}

/// The journal file opened once per flush lane (each its own open file description).
fn open_lanes(path: &Path) -> Result<Arc<[File; FLUSH_LANES]>, Error> {
    let open = || OpenOptions::new().write(true).open(path).map_err(io(path));
    Ok(Arc::new([open()?, open()?]))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and reads everything stored in it into
    /// [`Opened::changes`].
    pub fn open(dir: impl AsRef<Path>) -> Result<(Self, Opened), Error> {
        let mut changes = Vec::new();
        let (journal, mut opened) = Self::open_with(dir, &mut |m| changes.push(m))?;
        opened.changes = changes;
        Ok((journal, opened))
    }

    /// Like [`Journal::open`], handing each stored change to `apply` as it is read instead of
    /// collecting them ([`Opened::changes`] stays empty): recovery then holds the file, not
    /// every decoded change at once.
    pub fn open_with(
        dir: impl AsRef<Path>,
        apply: &mut dyn FnMut(Message),
    ) -> Result<(Self, Opened), Error> {
        let dir = dir.as_ref().to_owned();
        // Before anything in the directory is read or written.
        let lock = DirLock::acquire(&dir)?;
        match newest_generation(&dir)? {
            None => Self::create(dir, lock),
            Some(generation) => Self::reopen(dir, lock, generation, apply),
        }
    }

    /// A new journal (generation 1) in `dir`: its header written and synced.
    fn create(dir: PathBuf, lock: DirLock) -> Result<(Self, Opened), Error> {
        let path = dir.join(journal_name(1));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(FILE_MAGIC);
        header.extend_from_slice(&VERSION.to_be_bytes());
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(io(&path))?;
        sync_dir(&dir)?;
        let lanes = open_lanes(&path)?;
        let journal = Self {
            _lock: lock,
            dir,
            generation: 1,
            file,
            end: HEADER as u64,
            allocated: HEADER as u64,
            lanes,
            codec: codec(),
            buf: BytesMut::new(),
        };
        let opened = Opened {
            path,
            created: true,
            bytes: HEADER as u64,
            used: HEADER as u64,
            version: VERSION,
            ..Opened::default()
        };
        Ok((journal, opened))
    }

    /// The journal of `generation` in `dir`, read into `apply`: a torn tail cut off, an older
    /// version upgraded in place, the cursor after the last record.
    fn reopen(
        dir: PathBuf,
        lock: DirLock,
        generation: u64,
        apply: &mut dyn FnMut(Message),
    ) -> Result<(Self, Opened), Error> {
        let path = dir.join(journal_name(generation));
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io(&path))?;
        let mut opened = read_records(&path, &bytes, apply)?;
        opened.path = path.clone();
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut allocated = opened.bytes;
        if let Some((at, _)) = opened.torn_tail {
            file.set_len(at)
                .and_then(|()| file.sync_all())
                .map_err(io(&path))?;
            allocated = at;
        }
        if opened.version < VERSION {
            // Upgraded in place: what follows may use the new version's records.
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(4))
                .and_then(|_| file.write_all(&VERSION.to_be_bytes()))
                .and_then(|()| file.sync_data())
                .map_err(io(&path))?;
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(opened.used)).map_err(io(&path))?;
        let lanes = open_lanes(&path)?;
        let journal = Self {
            _lock: lock,
            dir,
            generation,
            file,
            end: opened.used,
            allocated,
            lanes,
            codec: codec(),
            buf: BytesMut::new(),
        };
        Ok((journal, opened))
    }

    /// The live journal file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(journal_name(self.generation))
    }

    /// Makes room for `len` more bytes after the records: if the preallocated space is too
    /// small, extends the file with zeros past what is needed (see [`PREALLOCATE`]) and syncs
    /// its new length, then puts the cursor back at the end of the records.
    fn reserve(&mut self, len: u64) -> Result<(), Error> {
        let needed = self.end + len;
        if needed <= self.allocated {
            return Ok(());
        }
        let target = needed + self.end.clamp(MIN_PREALLOCATE, PREALLOCATE);
        let path = self.path();
        let zeros = vec![0u8; 256 * 1024];
        let mut at = self.allocated;
        std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(at)).map_err(io(&path))?;
        while at < target {
            let n = usize::try_from(target - at).map_or(zeros.len(), |n| n.min(zeros.len()));
            self.file
                .write_all(zeros.get(..n).unwrap_or_default())
                .map_err(io(&path))?;
            at += n as u64;
        }
        self.file.sync_all().map_err(io(&path))?;
        self.allocated = target;
        std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.end))
            .map_err(io(&path))?;
        Ok(())
    }
}

/// Starts writing `len` bytes at `offset` of `file` to the disk, without waiting (Linux's
/// `sync_file_range` with `SYNC_FILE_RANGE_WRITE`): the sync that follows then finds them
/// written or on their way. Advisory: a failure is left for that sync to report.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range takes a descriptor and three integers and touches no memory of
    // ours; the descriptor is open for as long as `file` is borrowed.
    #[allow(unsafe_code)]
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Elsewhere the sync does all the writing.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

impl Journal {
    /// Encodes `batches` as records and writes them after the last one, without syncing;
    /// false when there was nothing to write.
    fn write_records(&mut self, batches: &[Vec<Message>]) -> Result<bool, Error> {
        self.buf.clear();
        let mut frames = BytesMut::new();
        for batch in batches.iter().filter(|b| !b.is_empty()) {
            frames.clear();
            for change in batch {
                self.codec.encode(change, &mut frames)?;
            }
            put_record(&mut self.buf, &frames)?;
        }
        if self.buf.is_empty() {
            return Ok(false);
        }
        self.reserve(self.buf.len() as u64)?;
        let path = self.path();
        self.file.write_all(&self.buf).map_err(io(&path))?;
        self.end += self.buf.len() as u64;
        Ok(true)
    }
}

impl Store for Journal {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), Error> {
        if self.write_records(batches)? {
            let path = self.path();
            self.file.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    fn write(&mut self, batches: &[Vec<Message>]) -> Result<Option<Flush>, Error> {
        let start = self.end;
        if !self.write_records(batches)? {
            return Ok(None);
        }
        // The sync will run on another thread while the next records are written: the data
        // starts on its way now, so that the sync has less left to wait for.
        start_writeback(&self.file, start, self.end - start);
        Ok(Some(Flush::new(Arc::clone(&self.lanes), self.path())))
    }

    fn write_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<Option<Flush>, Error> {
        self.write(&batches)
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), Error> {
        let next = self.generation + 1;
        let tmp = self.dir.join(format!("journal-{next:08}.tmp"));
        let path = self.dir.join(journal_name(next));
        let mut out = BytesMut::with_capacity(HEADER + CHUNK);
        out.extend_from_slice(FILE_MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        let (mut frames, mut one) = (BytesMut::new(), BytesMut::new());
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        for change in snapshot {
            one.clear();
            self.codec.encode(change, &mut one)?;
            // Records of about CHUNK bytes, never past MAX_RECORD.
            if !frames.is_empty() && frames.len() + one.len() > CHUNK {
                put_record(&mut out, &frames)?;
                frames.clear();
                file.write_all(&out).map_err(io(&tmp))?;
                out.clear();
            }
            frames.extend_from_slice(&one);
        }
        if !frames.is_empty() {
            put_record(&mut out, &frames)?;
        }
        file.write_all(&out)
            .and_then(|()| file.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        let old = self.path();
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let end = std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io(&path))?;
        self.file = file;
        self.end = end;
        self.allocated = end;
        self.lanes = open_lanes(&path)?;
        self.generation = next;
        let _ = fs::remove_file(old);
        sync_dir(&self.dir)
    }
}

/// Reads a journal file's bytes (`path` names it in errors), handing each stored change to
/// `apply` in order, a record's changes only once the whole record decoded. What it found
/// ([`Opened::path`] and [`Opened::created`] left empty); see the crate documentation for what
/// counts as a torn tail and what as corruption. Nothing is written.
pub fn read_journal(
    path: &Path,
    bytes: &[u8],
    apply: &mut dyn FnMut(Message),
) -> Result<Opened, Error> {
    read_records(path, bytes, apply)
}

fn read_records(
    path: &Path,
    bytes: &[u8],
    apply: &mut dyn FnMut(Message),
) -> Result<Opened, Error> {
    if bytes.get(..4) != Some(FILE_MAGIC.as_slice()) || bytes.len() < HEADER {
        return Err(Error::NotAJournal {
            path: path.to_owned(),
        });
    }
    let found = bytes
        .get(4..HEADER)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map_or(0, u32::from_be_bytes);
    if !(OLDEST_VERSION..=VERSION).contains(&found) {
        return Err(Error::UnknownVersion {
            path: path.to_owned(),
            found,
            supported: VERSION,
        });
    }
    let codec = codec();
    let mut opened = Opened {
        bytes: bytes.len() as u64,
        version: found,
        ..Opened::default()
    };
    let mut pos = HEADER;
    let mut decoded = Vec::new();
    loop {
        opened.used = pos as u64;
        // The end of the records: the end of the file, or preallocated space (only zeros).
        if bytes
            .get(pos..)
            .is_none_or(|rest| rest.iter().all(|b| *b == 0))
        {
            break;
        }
        match record_at(bytes, pos) {
            Ok(payload) => {
                // The whole record decodes before any of it is applied: a record is one
                // request's changes, all or nothing.
                let mut buf = BytesMut::from(payload);
                decoded.clear();
                while !buf.is_empty() {
                    match codec.decode(&mut buf) {
                        Ok(Some(m)) => decoded.push(m),
                        Ok(None) | Err(_) => {
                            return Err(Error::Corrupt {
                                path: path.to_owned(),
                                offset: pos as u64,
                                why: "its checksum is right but its changes do not decode".into(),
                            });
                        }
                    }
                }
                decoded.drain(..).for_each(&mut *apply);
                opened.records += 1;
                pos += RECORD_HEADER + payload.len();
            }
            Err(why) => {
                // Torn tail, unless a good record follows somewhere after this one.
                let later = (pos + 1..bytes.len()).find(|p| record_at(bytes, *p).is_ok());
                return match later {
                    Some(_) => Err(Error::Corrupt {
                        path: path.to_owned(),
                        offset: pos as u64,
                        why,
                    }),
                    None => {
                        opened.torn_tail = Some((pos as u64, (bytes.len() - pos) as u64));
                        Ok(opened)
                    }
                };
            }
        }
    }
    Ok(opened)
}

/// The payload of a valid record at `pos`, or why there is none.
fn record_at(bytes: &[u8], pos: usize) -> Result<&[u8], String> {
    let header = bytes
        .get(pos..pos + RECORD_HEADER)
        .ok_or("the record header is cut off")?;
    let (magic, rest) = header.split_at(4);
    if magic != RECORD_MAGIC {
        return Err("bad record marker".into());
    }
    let (len, sum) = rest.split_at(4);
    let len = u32::from_be_bytes(len.try_into().map_err(|_| "bad length")?);
    let sum = u32::from_be_bytes(sum.try_into().map_err(|_| "bad checksum field")?);
    if len as usize > MAX_RECORD {
        return Err(format!("record length {len} is larger than any record"));
    }
    let start = pos + RECORD_HEADER;
    let payload = bytes
        .get(start..start + len as usize)
        .ok_or("the record is cut off")?;
    if crc(len, payload) != sum {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}
