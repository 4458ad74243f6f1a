//! The build script of every package with tests that need PostgreSQL (each names this file as
//! its `build`): it looks for PostgreSQL's server binaries as the tests' throwaway cluster does
//! (`initdb` under `IXN_PG_BINDIR`, or under `/usr/lib/postgresql/<version>/bin`) and, when
//! there are none, sets `cfg(ixn_no_postgres)`: those tests are then reported as ignored, with
//! the reason, in `cargo test`'s counts, instead of passing without running. With
//! `IXN_REQUIRE_POSTGRES` set (as `.ci/run` does) a missing PostgreSQL fails the build.
//!
//! It runs again when those variables change, when the binaries found change, and, while none
//! are found, (on Debian) when a package is installed or removed.

// A build script speaks to cargo on stdout, and to the person building on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

fn initdb() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("IXN_PG_BINDIR") {
        let p = Path::new(&d).join("initdb");
        return p.is_file().then_some(p);
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join("initdb")))
        .find(|p| p.is_file())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ixn_no_postgres)");
    println!("cargo::rerun-if-env-changed=IXN_PG_BINDIR");
    println!("cargo::rerun-if-env-changed=IXN_REQUIRE_POSTGRES");
    match initdb() {
        Some(p) => println!("cargo::rerun-if-changed={}", p.display()),
        None => {
            // Installing PostgreSQL later (on Debian) runs this again. Only while it is
            // missing: other packages installed (as `.ci/run` installs its own) rebuild nothing.
            if Path::new("/var/lib/dpkg/status").is_file() {
                println!("cargo::rerun-if-changed=/var/lib/dpkg/status");
            }
            if std::env::var_os("IXN_REQUIRE_POSTGRES").is_some() {
                eprintln!(
                    "IXN_REQUIRE_POSTGRES is set but PostgreSQL's initdb is not under IXN_PG_BINDIR nor /usr/lib/postgresql/<version>/bin: install PostgreSQL (Debian: apt install postgresql) or unset IXN_REQUIRE_POSTGRES"
                );
                std::process::exit(1);
            }
            println!("cargo::rustc-cfg=ixn_no_postgres");
        }
    }
}
