//! `ixn-load snapshot`: snapshots over many stored interactions, side by side with what a
//! database does for the same question.
//!
//! A server is spawned (on PostgreSQL with `--postgres`, so that the very interactions it holds
//! are rows of the PostgreSQL store's table) and loaded with `--interactions` interactions over
//! `--places` queues and workbins (half each; every tenth a chat, the rest emails; UserData
//! Subject, Priority and Customer). Then, each `--samples` times, as round trips from the
//! client:
//!
//! - ixn: RequestTakeSnapshot of each condition (at most 500, ordered), then its release;
//! - PostgreSQL: the equivalent SELECT (WHERE, ORDER BY, LIMIT 500) on `ixn_interactions`, with
//!   the indexes one would add for it (the location with ReceivedAt, and ReceivedAt alone), over
//!   one connection, the statement's text planned each time as a server building SQL from a
//!   condition would send it;
//!
//! and a page of 100 against fetching 100 rows by id. Both count what they selected; the table
//! shows both counts so that a difference shows. Then the other clients' round trips (Ping, one
//! in flight each) while one client takes full-scan snapshots back to back, against the same
//! without it; and what a held snapshot costs per interaction (the server's resident memory
//! before and after opening snapshots of 10,000).

use crate::error::Error;
use crate::target::{self, Keep, Target};
use crate::wire::{self, Conn};
use hdrhistogram::Histogram;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_config::{ConfigFile, Limits, QueueEntry};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) bin: PathBuf,
    pub(crate) interactions: usize,
    pub(crate) places: usize,
    pub(crate) samples: usize,
    pub(crate) others: usize,
    /// A PostgreSQL URL whose user may create databases (`ixnsnap` is dropped and made).
    pub(crate) postgres: Option<String>,
    pub(crate) json: bool,
}

/// One question, asked of both.
struct Question {
    name: &'static str,
    condition: String,
    order: &'static str,
    sql: String,
}

fn questions(queues: usize, agents: usize) -> Vec<Question> {
    let q = 7 % queues.max(1);
    let a = 7 % agents.max(1);
    let select = "SELECT id FROM ixn_interactions WHERE";
    vec![
        Question {
            name: "one queue",
            condition: format!("Queue = 'q{q}' AND UserData.Priority >= 2"),
            order: "ReceivedAt",
            sql: format!(
                "{select} location = 'queue q{q}' AND (properties->'UserData'->>'Priority')::int >= 2 \
                 ORDER BY properties->>'ReceivedAt' LIMIT 500"
            ),
        },
        Question {
            name: "one workbin",
            condition: format!(
                "WorkbinTypeId = 'Drafts' AND AgentId = 'agent{a}' AND MediaType = 'email'"
            ),
            order: "ReceivedAt DESC",
            sql: format!(
                "{select} location = 'workbin Drafts agent agent{a}' AND properties->>'MediaType' = 'email' \
                 ORDER BY properties->>'ReceivedAt' DESC LIMIT 500"
            ),
        },
        Question {
            name: "every interaction",
            condition: "MediaType = 'chat' AND UserData.Subject LIKE '%770'".to_owned(),
            order: "ReceivedAt DESC",
            sql: format!(
                "{select} properties->>'MediaType' = 'chat' AND properties->'UserData'->>'Subject' LIKE '%770' \
                 ORDER BY properties->>'ReceivedAt' DESC LIMIT 500"
            ),
        },
        Question {
            name: "every interaction's UserData",
            condition: "UserData.Customer = 'c123' AND UserData.Priority >= 3".to_owned(),
            order: "ReceivedAt DESC",
            sql: format!(
                "{select} properties->'UserData'->>'Customer' = 'c123' \
                 AND (properties->'UserData'->>'Priority')::int >= 3 \
                 ORDER BY properties->>'ReceivedAt' DESC LIMIT 500"
            ),
        },
    ]
}

/// Round trips of one side: the median, the 99th percentile, and how many rows it selected.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    median: Duration,
    p99: Duration,
    rows: usize,
}

fn timing(mut samples: Vec<Duration>, rows: usize) -> Timing {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    Timing {
        median: at(0.5),
        p99: at(0.99),
        rows,
    }
}

/// The configuration: `agents` agents (their Drafts are the workbins) and `queues` queues
/// `q0`.., room for `n` interactions and for snapshots of 10,000.
fn config(agents: usize, queues: usize, n: usize, others: usize) -> ConfigFile {
    let limits = Limits {
        max_connections: others + 64,
        max_interactions: n + 10_000,
        max_interactions_per_workbin: n.max(10_000),
        max_stored_bytes: usize::MAX / 2,
        max_interactions_per_snapshot: 10_000,
        max_snapshots_per_client: 64,
        outbound_queue_messages: 100_000,
        registration_timeout_secs: 600,
        ..Limits::default()
    };
    let mut c = ConfigFile::synthetic(agents.max(1), 1, limits);
    c.queue = (0..queues.max(1))
        .map(|i| QueueEntry {
            name: format!("q{i}"),
            tenant: 101,
        })
        .collect();
    c
}

fn message(id: MessageId) -> Message {
    Message::new(id).with(attr::REFERENCE_ID, 1)
}

/// Loads `n` interactions: even ones queued in `q(i/2 mod queues)`, odd ones in the Drafts of
/// `agent(i/2 mod agents)`.
async fn load(conn: &mut Conn, n: usize, agents: usize, queues: usize) -> Result<(), Error> {
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1024);
    for i in 0..n {
        let id = format!("snap{i:08}");
        let user_data = KvList::new()
            .with("Subject", format!("Order {i}"))
            .with("Priority", (i % 5) as i32)
            .with("Customer", format!("c{}", i % 1000));
        batch.push(
            message(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, if i % 10 == 0 { "chat" } else { "email" })
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, format!("q{}", (i / 2) % queues.max(1)))
                .with(attr::INTERACTION_ID, id.as_str())
                .with(attr::USER_DATA, user_data),
        );
        if i % 2 == 1 {
            batch.push(wire::place(&id, wire::drafts((i / 2) % agents.max(1))));
        }
        if batch.len() >= 1000 || i + 1 == n {
            conn.call_all(&batch).await?;
            batch.clear();
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "ixn-load snapshot: {} interactions loaded in {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn take(condition: &str, order: &str, max: i32) -> Message {
    message(MessageId::REQUEST_TAKE_SNAPSHOT)
        .with(attr::CONDITION, condition)
        .with(attr::ORDER, order)
        .with(attr::SNAPSHOT_MAX_INTERACTIONS, max)
}

fn release(sid: &str) -> Message {
    message(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, sid)
}

/// Takes a snapshot: its id and how many it holds.
async fn snapshot(conn: &mut Conn, msg: &Message) -> Result<(String, usize), Error> {
    let taken = conn.call(msg).await?;
    let sid = taken
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .map(ToString::to_string)
        .ok_or_else(|| Error::Protocol(format!("no SnapshotId in {taken:?}")))?;
    let n = taken
        .attrs
        .get_int(attr::NUMBER_OF_INTERACTIONS)
        .unwrap_or(0);
    Ok((sid, usize::try_from(n).unwrap_or(0)))
}

/// ixn's round trips for `q` (each snapshot released untimed).
async fn ask_ixn(conn: &mut Conn, q: &Question, samples: usize) -> Result<Timing, Error> {
    let msg = take(&q.condition, q.order, 500);
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0;
    for i in 0..samples + 2 {
        let t = Instant::now();
        let (sid, n) = snapshot(conn, &msg).await?;
        if i >= 2 {
            times.push(t.elapsed());
        }
        rows = n;
        conn.call(&release(&sid)).await?;
    }
    Ok(timing(times, rows))
}

/// ixn's round trips for a page of 100 (from 200) of a snapshot of 500; and the ids paged.
async fn page_ixn(conn: &mut Conn, samples: usize) -> Result<(Timing, Vec<String>), Error> {
    let (sid, _) = snapshot(conn, &take("MediaType = 'email'", "", 500)).await?;
    let page = message(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
        .with(attr::SNAPSHOT_ID, sid.as_str())
        .with(attr::START_FROM, 200)
        .with(attr::NUMBER_OF_INTERACTIONS, 100);
    let mut times = Vec::with_capacity(samples);
    let mut ids = Vec::new();
    for i in 0..samples + 2 {
        let t = Instant::now();
        let reply = conn.call(&page).await?;
        if i >= 2 {
            times.push(t.elapsed());
        }
        ids = reply
            .attrs
            .get_list(attr::INTERACTIONS)
            .map(|l| l.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
    }
    conn.call(&release(&sid)).await?;
    Ok((timing(times, ids.len()), ids))
}

/// PostgreSQL's round trips for each question and for 100 rows by id, on the store's table.
fn ask_postgres(
    url: &str,
    questions: &[String],
    page: &[String],
    samples: usize,
) -> Result<Vec<Timing>, Error> {
    let fail = |what: &str, e: postgres::Error| Error::Setup(format!("PostgreSQL, {what}: {e}"));
    let mut client =
        postgres::Client::connect(url, postgres::NoTls).map_err(|e| fail("connect", e))?;
    client
        .batch_execute(
            "CREATE INDEX IF NOT EXISTS ixn_snap_location ON ixn_interactions (location, (properties->>'ReceivedAt'));
             CREATE INDEX IF NOT EXISTS ixn_snap_received ON ixn_interactions ((properties->>'ReceivedAt'));
             ANALYZE ixn_interactions;",
        )
        .map_err(|e| fail("indexing", e))?;
    let mut out = Vec::new();
    for sql in questions {
        let mut times = Vec::with_capacity(samples);
        let mut rows = 0;
        for i in 0..samples + 2 {
            let t = Instant::now();
            let got = client.query(sql.as_str(), &[]).map_err(|e| fail(sql, e))?;
            if i >= 2 {
                times.push(t.elapsed());
            }
            rows = got.len();
        }
        out.push(timing(times, rows));
    }
    let by_id = "SELECT properties FROM ixn_interactions WHERE id = ANY($1)";
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0;
    for i in 0..samples + 2 {
        let t = Instant::now();
        let got = client.query(by_id, &[&page]).map_err(|e| fail(by_id, e))?;
        if i >= 2 {
            times.push(t.elapsed());
        }
        rows = got.len();
    }
    out.push(timing(times, rows));
    Ok(out)
}

/// Other clients' Ping round trips (one in flight each) for `for_` (p50, p99), while
/// `scanning` takes full-scan snapshots back to back (how many it took).
async fn others_while(
    addr: std::net::SocketAddr,
    others: usize,
    for_: Duration,
    scan: bool,
) -> Result<(Duration, Duration, usize), Error> {
    let until = Instant::now() + for_;
    let mut tasks = Vec::new();
    for _ in 0..others {
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(addr, None).await?;
            c.register("media", ClientType::MediaServer).await?;
            let mut h =
                Histogram::<u64>::new(3).map_err(|e| Error::Setup(format!("histogram: {e}")))?;
            while Instant::now() < until {
                let t = Instant::now();
                c.call(&wire::ping()).await?;
                let _ = h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Ok::<_, Error>(h)
        }));
    }
    let scans = if scan {
        let mut c = Conn::connect(addr, None).await?;
        c.register("media", ClientType::MediaServer).await?;
        let msg = take(
            "MediaType = 'chat' AND UserData.Subject LIKE '%770'",
            "ReceivedAt DESC",
            500,
        );
        let mut n = 0;
        while Instant::now() < until {
            let (sid, _) = snapshot(&mut c, &msg).await?;
            c.call(&release(&sid)).await?;
            n += 1;
        }
        n
    } else {
        0
    };
    let mut all = Histogram::<u64>::new(3).map_err(|e| Error::Setup(format!("histogram: {e}")))?;
    for t in tasks {
        let h = t
            .await
            .map_err(|e| Error::Setup(format!("a client task failed: {e}")))??;
        let _ = all.add(h);
    }
    let us = |q: f64| Duration::from_micros(all.value_at_quantile(q));
    Ok((us(0.5), us(0.99), scans))
}

/// Resident bytes per interaction held by `k` snapshots of 10,000 (their ids only). One is
/// taken and released first, so that what a scan uses while it runs is resident already.
async fn memory_per_held(target: &Target, conn: &mut Conn, k: usize) -> Result<f64, Error> {
    let rss = || target.memory().map_or(0, |m| m.rss);
    let msg = take("MediaType = 'email'", "", 10_000);
    let (sid, _) = snapshot(conn, &msg).await?;
    conn.call(&release(&sid)).await?;
    let before = rss();
    let mut held = Vec::new();
    let mut n = 0;
    for _ in 0..k {
        let (sid, got) = snapshot(conn, &msg).await?;
        held.push(sid);
        n += got;
    }
    let after = rss();
    for sid in held {
        conn.call(&release(&sid)).await?;
    }
    Ok(after.saturating_sub(before) as f64 / n.max(1) as f64)
}

/// A media server's connection; on PostgreSQL the server takes the store over first (it
/// stands by until then), so registering is tried for up to 30 s.
async fn registered(addr: std::net::SocketAddr) -> Result<Conn, Error> {
    let started = Instant::now();
    loop {
        let mut conn = Conn::connect(addr, None).await?;
        match conn.register("media", ClientType::MediaServer).await {
            Ok(()) => return Ok(conn),
            Err(Error::Refused { .. }) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints its table.
pub(crate) async fn run(p: Params) -> Result<(), Error> {
    let (agents, queues) = (p.places / 2, p.places - p.places / 2);
    let store = match &p.postgres {
        Some(admin) => Some(fresh_database(admin).await?),
        None => None,
    };
    let keep = store.as_deref().map_or(Keep::Ephemeral, Keep::Postgres);
    let (target, _) = target::start_bin(
        &p.bin,
        keep,
        None,
        &config(agents, queues, p.interactions, p.others),
        false,
    )?;
    let mut conn = registered(target.addr).await?;
    load(&mut conn, p.interactions, agents, queues).await?;
    let qs = questions(queues, agents);
    let mut ixn = Vec::new();
    for q in &qs {
        ixn.push(ask_ixn(&mut conn, q, p.samples).await?);
    }
    let (page, page_ids) = page_ixn(&mut conn, p.samples).await?;
    ixn.push(page);
    let pg = match &store {
        Some(url) => {
            let (url, sql) = (
                url.clone(),
                qs.iter().map(|q| q.sql.clone()).collect::<Vec<_>>(),
            );
            let samples = p.samples;
            tokio::task::spawn_blocking(move || ask_postgres(&url, &sql, &page_ids, samples))
                .await
                .map_err(|e| Error::Setup(format!("the PostgreSQL task failed: {e}")))??
        }
        None => Vec::new(),
    };
    let quiet = Duration::from_secs(3);
    let (base50, base99, _) = others_while(target.addr, p.others, quiet, false).await?;
    let (scan50, scan99, scans) = others_while(target.addr, p.others, quiet, true).await?;
    let per_held = memory_per_held(&target, &mut conn, 60).await?;
    let names: Vec<&str> = qs.iter().map(|q| q.name).chain(["a page of 100"]).collect();
    let others = Others {
        base: (base50, base99),
        scanning: (scan50, scan99),
        scans,
        per_held,
        window: quiet,
    };
    print_results(&p, (queues, agents), &names, (&ixn, &pg), &others);
    Ok(())
}

/// The other clients' figures.
struct Others {
    base: (Duration, Duration),
    scanning: (Duration, Duration),
    scans: usize,
    per_held: f64,
    window: Duration,
}

/// Prints the table (or JSON lines).
fn print_results(
    p: &Params,
    (queues, agents): (usize, usize),
    names: &[&str],
    (ixn, pg): (&[Timing], &[Timing]),
    o: &Others,
) {
    let (base50, base99) = o.base;
    let (scan50, scan99) = o.scanning;
    let (scans, per_held, quiet) = (o.scans, o.per_held, o.window);
    if p.json {
        for (i, name) in names.iter().enumerate() {
            let (x, y) = (ixn.get(i).copied().unwrap_or_default(), pg.get(i).copied());
            println!(
                "{}",
                serde_json::json!({
                    "workload": "snapshot", "interactions": p.interactions, "question": name,
                    "ixn_median_ms": ms(x.median), "ixn_p99_ms": ms(x.p99), "ixn_rows": x.rows,
                    "pg_median_ms": y.map(|y| ms(y.median)), "pg_p99_ms": y.map(|y| ms(y.p99)),
                    "pg_rows": y.map(|y| y.rows),
                })
            );
        }
        println!(
            "{}",
            serde_json::json!({
                "workload": "snapshot-others", "others": p.others,
                "ping_p50_ms": ms(base50), "ping_p99_ms": ms(base99),
                "ping_p50_scanning_ms": ms(scan50), "ping_p99_scanning_ms": ms(scan99),
                "full_scans": scans, "bytes_per_held_interaction": per_held,
            })
        );
        return;
    }
    println!(
        "snapshots over {} interactions in {queues} queues and {agents} workbins; round trips, {} samples each",
        p.interactions, p.samples
    );
    println!(
        "{:<30} {:>11} {:>9} {:>6}   {:>11} {:>9} {:>6}   {:>6}",
        "question", "ixn median", "ixn p99", "rows", "pg median", "pg p99", "rows", "pg/ixn"
    );
    for (i, name) in names.iter().enumerate() {
        let x = ixn.get(i).copied().unwrap_or_default();
        let (pg_cols, ratio) = match pg.get(i) {
            Some(y) => (
                format!("{:>9.2}ms {:>7.2}ms {:>6}", ms(y.median), ms(y.p99), y.rows),
                format!("{:>5.1}x", ms(y.median) / ms(x.median).max(1e-9)),
            ),
            None => (format!("{:>29}", "(no --postgres)"), String::new()),
        };
        println!(
            "{name:<30} {:>9.2}ms {:>7.2}ms {:>6}   {pg_cols}   {ratio}",
            ms(x.median),
            ms(x.p99),
            x.rows
        );
    }
    println!(
        "{} other clients' Ping: p50 {:.2} ms, p99 {:.2} ms alone; p50 {:.2} ms, p99 {:.2} ms while one client took {scans} full-scan snapshots back to back in {} s",
        p.others,
        ms(base50),
        ms(base99),
        ms(scan50),
        ms(scan99),
        quiet.as_secs()
    );
    println!("a held snapshot: {per_held:.1} resident bytes per interaction it holds");
}

/// Drops and makes database `ixnsnap` beside the one `admin` names; its URL.
async fn fresh_database(admin: &str) -> Result<String, Error> {
    let admin = admin.to_owned();
    tokio::task::spawn_blocking(move || {
        let fail = |e: postgres::Error| Error::Setup(format!("PostgreSQL at {admin}: {e}"));
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).map_err(fail)?;
        c.batch_execute("DROP DATABASE IF EXISTS ixnsnap")
            .map_err(fail)?;
        c.batch_execute("CREATE DATABASE ixnsnap").map_err(fail)?;
        let (base, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), ""), |(b, q)| (b, q));
        let (head, _) = base.rsplit_once('/').ok_or_else(|| {
            Error::Setup(format!(
                "--postgres {admin:?}: give a URL with a database, such as postgres://postgres@127.0.0.1/postgres"
            ))
        })?;
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Ok(format!("{head}/ixnsnap{query}"))
    })
    .await
    .map_err(|e| Error::Setup(format!("the PostgreSQL task failed: {e}")))?
}
