//! The data directory's lock.

use crate::error::{Error, io};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// The name of the lock file in a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive lock on a data directory, held until dropped (or the process ends: the
/// operating system releases it even after a crash). The lock file holds the holder's pid.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed and locks it, before anything in it is read or written. Fails
    /// with [`Error::Locked`], naming the holder's pid, if another store holds it.
    pub fn acquire(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim() {
                    "" => "pid unknown".to_owned(),
                    pid => format!("pid {pid}"),
                };
                return Err(Error::Locked {
                    dir: dir.to_owned(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0)
            .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io(&path))?;
        Ok(Self { _file: file })
    }
}
