//! Starts a throwaway PostgreSQL cluster, prints `CLUSTER <dir> <port>` (or `UNAVAILABLE
//! <why>`), and holds it until its standard input ends: the reaper test kills this process and
//! checks that the cluster does not outlive it.

#![allow(clippy::print_stdout)] // the line on stdout is this program's answer

use std::io::Read;

fn main() {
    match ixn_testkit::pg::Cluster::start("hold") {
        Ok(cluster) => {
            println!("CLUSTER {} {}", cluster.dir().display(), cluster.port());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            drop(cluster);
        }
        Err(why) => println!("UNAVAILABLE {why}"),
    }
}
