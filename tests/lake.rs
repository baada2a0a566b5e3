//! The lake (issue #14, `/work/wt/LAKE-CONTRACT.md`): every local partition also in object
//! storage, Hive layout, written by `collect` and `lake sync`, read by `analyze --data-dir
//! s3://…` and by other engines (pyarrow, polars: `tests/lake/read_lake.py`).
//!
//! The built binary against a fake sacct ([`Env`]) and a real S3 endpoint ([`MotoServer`]:
//! moto on 127.0.0.1). Without moto (or pyarrow and polars, for the engine checks) a test is
//! skipped, except under `CI=true`, where it fails; `.ci/run` installs them. The `file://`
//! test needs neither.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use util::*;

/// The key prefix of the lake inside the test bucket.
const PREFIX: &str = "lake";
/// The lake's cluster where a test names it in the config.
const CLUSTER: &str = "hpc";
/// Longer than any lake command may take here; past it the run is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(120);

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The env's config with a `[lake]` table: `url`, and `cluster` when given. Nothing is
/// dropped (`drop_fields = []`), so the lake's copies are the local files byte for byte;
/// the default drop and pseudonyms are tested in tests/lake_privacy.rs.
fn configure(env: &Env, url: &str, cluster: Option<&str>) {
    let mut lake = format!("\n[lake]\nurl = \"{url}\"\ndrop_fields = []\n");
    if let Some(c) = cluster {
        lake.push_str(&format!("cluster = \"{c}\"\n"));
    }
    env.write_config(&lake);
}

/// Runs the binary with the env's config, `server`'s AWS variables and `args`, within
/// [`LIMIT`].
fn run(env: &Env, server: &MotoServer, args: &[&str]) -> Output {
    let mut cmd = env.command(args);
    server.aws_env(&mut cmd);
    output_within(&mut cmd, LIMIT).unwrap()
}

/// Like [`run`], with the given keys instead of the ones the server accepts.
fn run_with_keys(env: &Env, server: &MotoServer, args: &[&str], key: &str, secret: &str) -> Output {
    let mut cmd = env.command(args);
    server.aws_env_with_keys(&mut cmd, key, secret);
    output_within(&mut cmd, LIMIT).unwrap()
}

/// Two finished jobs early on `date` (so today's have started, whenever the test runs), ids
/// `<first>` and `<first+1>`, every line's `Cluster` set when `cluster` is given.
fn two_jobs(date: NaiveDate, first: u64, cluster: Option<&str>) -> Vec<String> {
    let mut lines = finished_job(&first.to_string(), "alice", &at(date, "00:01"), "COMPLETED");
    lines.extend(finished_job(
        &(first + 1).to_string(),
        "bob",
        &at(date, "00:02"),
        "FAILED",
    ));
    match cluster {
        Some(c) => with_field(&lines, "Cluster", c),
        None => lines,
    }
}

/// The env's partition files: (kind, date) -> path, both kinds.
fn local_partitions(env: &Env) -> BTreeMap<(String, String), PathBuf> {
    let mut out = BTreeMap::new();
    for kind in ["processed", "raw"] {
        let Ok(entries) = std::fs::read_dir(env.data().join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(date) = name.strip_suffix(".parquet") {
                if date.parse::<NaiveDate>().is_ok() {
                    out.insert((kind.to_string(), date.to_string()), e.path());
                }
            }
        }
    }
    out
}

/// The object key of a partition: `<prefix>/<kind>/cluster=<c>/date=<d>/part-0.parquet`.
fn key(prefix: &str, kind: &str, cluster: &str, date: &str) -> String {
    format!("{prefix}/{kind}/cluster={cluster}/date={date}/part-0.parquet")
}

/// The data objects (both kinds) of `cluster` under `prefix`, with their bytes.
fn lake_objects(server: &MotoServer, prefix: &str, cluster: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = server.objects(&format!("{prefix}/processed/cluster={cluster}/"));
    out.extend(server.objects(&format!("{prefix}/raw/cluster={cluster}/")));
    out
}

/// The lake holds exactly the env's partitions for `cluster`, byte for byte.
fn assert_mirrors(env: &Env, server: &MotoServer, prefix: &str, cluster: &str) {
    let want: BTreeMap<String, Vec<u8>> = local_partitions(env)
        .into_iter()
        .map(|((kind, date), path)| {
            (
                key(prefix, &kind, cluster, &date),
                std::fs::read(path).unwrap(),
            )
        })
        .collect();
    let have = lake_objects(server, prefix, cluster);
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&have),
        names(&want),
        "the lake's keys are the local partitions"
    );
    for (k, bytes) in &want {
        assert!(have[k] == *bytes, "{k} differs from the local file");
    }
}

/// `lake status --json`, parsed.
fn status(env: &Env, server: &MotoServer) -> serde_json::Value {
    let out = run(env, server, &["lake", "status", "--json"]);
    assert!(out.status.success(), "lake status --json fails");
    serde_json::from_slice(&out.stdout).expect("lake status --json prints one JSON object")
}

/// The `pending` list of a `lake status --json` as (kind, date).
fn pending(status: &serde_json::Value) -> BTreeSet<(String, String)> {
    status["pending"]
        .as_array()
        .expect("`pending` is a list")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["date"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The line of `text` that starts with `prefix` (the `lake:` summary line, `Lake:` of status).
fn line_starting<'t>(text: &'t str, prefix: &str) -> &'t str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
}

/// The data keys PUT under the lake prefix since `before` of them were.
fn data_puts_since(server: &MotoServer, before: usize) -> Vec<String> {
    data_puts(server)[before..].to_vec()
}

/// PUTs of partition objects (both kinds), in the order the server got them.
fn data_puts(server: &MotoServer) -> Vec<String> {
    let (processed, raw) = (format!("{PREFIX}/processed/"), format!("{PREFIX}/raw/"));
    server
        .puts_under(PREFIX)
        .into_iter()
        .filter(|k| k.starts_with(&processed) || k.starts_with(&raw))
        .collect()
}

#[test]
fn moto_log_lines_parse() {
    let r = parse_request(
        "127.0.0.1 - - [07/Dec/2026 03:03:13] \"PUT /b/p/processed/cluster%3Dhpc/date%3D2026-12-01/part-0.parquet?x-id=PutObject HTTP/1.1\" 200 -",
    )
    .unwrap();
    assert_eq!(r.method, "PUT");
    assert_eq!(
        r.path,
        "/b/p/processed/cluster=hpc/date=2026-12-01/part-0.parquet"
    );
    assert_eq!(r.status, 200);
    assert_eq!(parse_request(" * Running on http://127.0.0.1:1"), None);
}

/// The harness itself (passes before the lake exists): objects in and out, an outage that
/// keeps the objects, and an auth server that refuses other keys.
#[test]
fn moto_harness_works() {
    let Some(mut server) = MotoServer::start("harness") else {
        return;
    };
    server.put("a/b/c.bin", b"PAR1 hello PAR1");
    assert_eq!(server.keys("a/"), ["a/b/c.bin"]);
    assert_eq!(server.get("a/b/c.bin").unwrap(), b"PAR1 hello PAR1");
    assert_eq!(server.get("a/nope"), None);
    assert!(is_whole_parquet(&server.get("a/b/c.bin").unwrap()));
    let etag = server.list("a/")[0].etag.clone();
    assert_eq!(server.puts_under("a/"), ["a/b/c.bin"]);

    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
    server.restart();
    assert_eq!(
        server.list("a/")[0].etag,
        etag,
        "the objects survive the outage"
    );

    let Some(auth) = MotoServer::start_with_auth("harness") else {
        return;
    };
    auth.put("x", b"1");
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(LAKE_SCRIPTS).join("s3ctl.py"))
        .args(["list", "harness", ""]);
    auth.aws_env_with_keys(&mut cmd, "AKIAWRONGWRONGWRONG1", "wrong");
    let out = output(&mut cmd);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("InvalidAccessKeyId"));
}

/// The premise of the two-cluster test (passes before the lake exists): the `Cluster` of the
/// sacct lines is the `cluster` column of the processed rows.
#[test]
fn sacct_lines_carry_the_cluster() {
    let env = Env::new("");
    env.set_output(day(1), &two_jobs(day(1), 11, Some("alpha")));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let jobs = env.jobs(day(1));
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.cluster == "alpha"));
}

/// `collect` uploads what it wrote after its local commit, at the Hive keys, byte for byte;
/// `lake status` and `status` say so.
#[test]
fn collect_uploads_its_partitions() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let env = Env::new("");
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    for n in 0..=2 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    let out = run(&env, &server, &["collect", "--days", "2"]);
    assert!(out.status.success());
    line_starting(&stdout(&out), "lake:");
    assert_eq!(
        local_partitions(&env).len(),
        6,
        "3 dates, processed and raw"
    );
    assert_mirrors(&env, &server, PREFIX, CLUSTER);

    let s = status(&env, &server);
    assert_eq!(s["url"], server.url(PREFIX));
    assert_eq!(s["cluster"], CLUSTER);
    assert_eq!(pending(&s), BTreeSet::new());
    assert!(
        s["last_upload"].is_u64(),
        "last_upload: {}",
        s["last_upload"]
    );
    // `partitions` counts the local ones (whether it counts both kinds is the implementation's).
    assert!([3, 6].contains(&s["partitions"].as_u64().unwrap()), "{s}");

    let out = run(&env, &server, &["status"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lake = line_starting(&text, "Lake:");
    assert!(lake.contains('0'), "no partition pending: {lake}");
}

/// A partition collected again with other sacct output replaces its lake object; the dates
/// that did not change are not uploaded again.
#[test]
fn a_recollected_partition_replaces_its_object() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let env = Env::new("");
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    for n in 0..=2 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    assert!(run(&env, &server, &["collect", "--days", "2"])
        .status
        .success());
    let today = day(0).to_string();
    let processed = key(PREFIX, "processed", CLUSTER, &today);
    let before = server.get(&processed).unwrap();

    // Today is never complete, so it is collected again; days 1 and 2 are complete.
    let mut lines = two_jobs(day(0), 1, None);
    lines.extend(finished_job(
        "7",
        "carol",
        &at(day(0), "12:00"),
        "COMPLETED",
    ));
    env.set_output(day(0), &lines);
    let puts = data_puts(&server).len();
    let out = run(&env, &server, &["collect", "--days", "2"]);
    assert!(out.status.success());
    assert_eq!(env.jobs(day(0)).len(), 3);
    let after = server.get(&processed).unwrap();
    assert_ne!(after, before, "the lake object changed");
    assert_mirrors(&env, &server, PREFIX, CLUSTER);
    let uploaded: BTreeSet<String> = data_puts_since(&server, puts).into_iter().collect();
    assert!(uploaded.contains(&processed), "{uploaded:?}");
    for k in &uploaded {
        assert!(
            k.contains(&format!("date={today}/")),
            "{k} did not change but was uploaded"
        );
    }
}

/// `lake sync` uploads an archive collected before the lake was configured; a second sync
/// uploads nothing; `--dry-run` uploads nothing either.
#[test]
fn lake_sync_twice_uploads_nothing_the_second_time() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let env = Env::new("");
    for n in 1..=3 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    assert!(env.run(&["collect", "--days", "3"]).status.success());
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    let local: BTreeSet<(String, String)> = local_partitions(&env).into_keys().collect();
    assert_eq!(
        pending(&status(&env, &server)),
        local,
        "all pending before a sync"
    );

    let out = run(&env, &server, &["lake", "sync", "--dry-run"]);
    assert!(data_puts(&server).is_empty(), "--dry-run uploaded: {out:?}");
    assert_eq!(pending(&status(&env, &server)), local);

    let out = run(&env, &server, &["lake", "sync"]);
    assert_eq!(out.status.code(), Some(0));
    assert_mirrors(&env, &server, PREFIX, CLUSTER);
    assert_eq!(pending(&status(&env, &server)), BTreeSet::new());
    let listed = server.list(&format!("{PREFIX}/"));
    let puts = data_puts(&server).len();

    // moto keeps whole seconds: a re-upload a second later would show a new last-modified.
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(&env, &server, &["lake", "sync"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        data_puts_since(&server, puts),
        Vec::<String>::new(),
        "nothing uploaded again"
    );
    let data = |l: Vec<S3Object>| -> Vec<S3Object> {
        l.into_iter()
            .filter(|o| !o.key.contains("/_slurm_usage/"))
            .collect()
    };
    assert_eq!(
        data(server.list(&format!("{PREFIX}/"))),
        data(listed),
        "etags and last-modified unchanged"
    );
    assert_eq!(pending(&status(&env, &server)), BTreeSet::new());
}

/// `lake sync` killed with SIGKILL mid-way: the lake holds only whole objects (each the
/// local file's bytes, each read as Parquet by pyarrow and polars), `lake status` still
/// lists what is missing, and the next sync completes.
#[test]
fn a_sync_killed_midway_leaves_whole_objects_and_stays_pending() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let dates = env_num("LAKE_KILL_DATES", 30);
    let env = Env::new("");
    for n in 0..dates {
        env.set_output(day(n), &many_jobs(day(n), 1000 * (n + 1), 150));
    }
    assert!(env
        .run(&["collect", "--days", &(dates - 1).to_string()])
        .status
        .success());
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    let local = local_partitions(&env);
    assert_eq!(local.len() as u64, 2 * dates);

    let mut cmd = env.command(&["lake", "sync"]);
    server.aws_env(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(env.path().join("sync.log")).unwrap())
        .stderr(std::fs::File::create(env.path().join("sync.err")).unwrap())
        .spawn()
        .unwrap();
    let printed = || {
        let read = |name: &str| std::fs::read_to_string(env.path().join(name)).unwrap_or_default();
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            read("sync.log"),
            read("sync.err")
        )
    };
    let t0 = Instant::now();
    // The first finished PUT of a partition (moto logs a request once it is answered).
    while data_puts(&server).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "lake sync ended ({status}) before any upload\n{}",
                printed()
            );
        }
        if t0.elapsed() > LIMIT {
            child.kill().unwrap();
            panic!("no upload within {LIMIT:?}\n{}", printed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status_killed = child.wait().unwrap();
    eprintln!(
        "lake sync killed after {:?}: {status_killed}\n{}",
        t0.elapsed(),
        printed()
    );

    let objects = lake_objects(&server, PREFIX, CLUSTER);
    let mut whole = BTreeSet::new();
    for (k, bytes) in &objects {
        assert!(
            is_whole_parquet(bytes),
            "{k} is not a whole Parquet file ({} bytes)",
            bytes.len()
        );
        let found = local
            .iter()
            .find(|((kind, date), _)| key(PREFIX, kind, CLUSTER, date) == *k);
        let ((kind, date), path) = found.unwrap_or_else(|| panic!("{k} is no local partition"));
        assert!(
            std::fs::read(path).unwrap() == *bytes,
            "{k} is not the local file's bytes"
        );
        whole.insert((kind.clone(), date.clone()));
    }
    let missing: BTreeSet<(String, String)> = local
        .keys()
        .filter(|p| !whole.contains(*p))
        .cloned()
        .collect();
    assert!(
        !missing.is_empty(),
        "the sync finished before the kill: nothing tested (hint: raise LAKE_KILL_DATES)"
    );
    let pend = pending(&status(&env, &server));
    assert!(
        missing.is_subset(&pend),
        "not in the lake but not pending: {:?}",
        missing.difference(&pend).collect::<Vec<_>>()
    );
    if have_engines() && objects.keys().any(|k| k.contains("/processed/")) {
        let seen = read_lake(&server.url(PREFIX), Some(&server));
        for engine in ["pyarrow", "polars"] {
            assert_eq!(
                seen[engine]["duplicates"],
                serde_json::json!([]),
                "{engine}"
            );
        }
    }

    let out = run(&env, &server, &["lake", "sync"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a later sync completes (same writer: its lease)"
    );
    assert_mirrors(&env, &server, PREFIX, CLUSTER);
    assert_eq!(pending(&status(&env, &server)), BTreeSet::new());
}

/// Keys the endpoint refuses: a clear error naming the lake, nothing local touched, every
/// partition still pending; `collect` still exits 0. The right keys then upload.
#[test]
fn wrong_credentials_are_refused_and_leave_everything_pending() {
    let Some(server) = MotoServer::start_with_auth("lake-bucket") else {
        return;
    };
    let env = Env::new("");
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    for n in 1..=2 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    let (bad_key, bad_secret) = ("AKIAWRONGWRONGWRONG1", "not-the-secret");
    let out = run_with_keys(
        &env,
        &server,
        &["collect", "--days", "2"],
        bad_key,
        bad_secret,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "collect's exit code never depends on the lake"
    );
    line_starting(&stdout(&out), "lake:");
    let local: BTreeSet<(String, String)> = local_partitions(&env).into_keys().collect();
    assert!(!local.is_empty());
    assert!(lake_objects(&server, PREFIX, CLUSTER).is_empty());
    let archive = |env: &Env| {
        let mut files = snapshot_bytes(&env.data().join("processed"));
        files.extend(snapshot_bytes(&env.data().join("raw")));
        files
    };
    let before = archive(&env);

    for (key_id, secret) in [(bad_key, bad_secret), (server.key_id(), "not-the-secret")] {
        let out = run_with_keys(&env, &server, &["lake", "sync"], key_id, secret);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&server.url(PREFIX)),
            "the error names the lake: {err}"
        );
        let lower = err.to_lowercase();
        assert!(
            [
                "invalidaccesskeyid",
                "signaturedoesnotmatch",
                "403",
                "forbidden",
                "credential",
                "access denied"
            ]
            .iter()
            .any(|w| lower.contains(w)),
            "the error says the keys were refused: {err}"
        );
        assert!(archive(&env) == before, "local partitions untouched");
        let out = run_with_keys(&env, &server, &["lake", "status", "--json"], key_id, secret);
        assert!(
            out.status.success(),
            "lake status works from the local state"
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(pending(&s), local);
    }

    server.stop_checking_keys();
    let out = run(&env, &server, &["lake", "sync"]);
    assert_eq!(out.status.code(), Some(0));
    assert_mirrors(&env, &server, PREFIX, CLUSTER);
}

/// The endpoint down for two collects: both exit 0, each says `lake:`, the pending list
/// grows; back up, the next collect uploads all of it.
#[test]
fn pending_grows_while_the_endpoint_is_down_and_drains_after() {
    let Some(mut server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let env = Env::new("");
    configure(&env, &server.url(PREFIX), Some(CLUSTER));
    for n in 0..=3 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    assert!(run(&env, &server, &["collect", "--days", "1"])
        .status
        .success());
    assert_mirrors(&env, &server, PREFIX, CLUSTER);

    server.stop();
    let mut counts = Vec::new();
    for days in ["2", "3"] {
        let t0 = Instant::now();
        let out = run(&env, &server, &["collect", "--days", days]);
        eprintln!(
            "collect --days {days} with the endpoint down took {:?}",
            t0.elapsed()
        );
        assert_eq!(out.status.code(), Some(0));
        line_starting(&stdout(&out), "lake:");
        let p = pending(&status(&env, &server));
        let new = day(days.parse().unwrap()).to_string();
        assert!(p.contains(&("processed".into(), new.clone())), "{p:?}");
        assert!(p.contains(&("raw".into(), new)), "{p:?}");
        counts.push(p.len());
        let out = run(&env, &server, &["status"]);
        let lake = line_starting(&stdout(&out), "Lake:").to_string();
        assert!(
            lake.contains(&p.len().to_string()),
            "{lake} shows {} pending",
            p.len()
        );
    }
    assert!(counts[1] > counts[0], "pending grows: {counts:?}");

    server.restart();
    let out = run(&env, &server, &["collect", "--days", "3"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        pending(&status(&env, &server)),
        BTreeSet::new(),
        "pending drained"
    );
    assert_mirrors(&env, &server, PREFIX, CLUSTER);
}

/// Two data dirs writing one cluster of one lake: the second is refused (the lease is held
/// by the first) and uploads nothing; its collect still exits 0 with the lake pending.
#[test]
fn a_second_writer_for_the_same_cluster_is_refused() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let (first, second) = (Env::new(""), Env::new(""));
    for env in [&first, &second] {
        configure(env, &server.url(PREFIX), Some(CLUSTER));
    }
    first.set_output(day(1), &two_jobs(day(1), 11, None));
    second.set_output(day(1), &two_jobs(day(1), 21, None));
    second.set_output(day(2), &two_jobs(day(2), 31, None));
    assert!(run(&first, &server, &["collect", "--days", "1"])
        .status
        .success());
    assert_mirrors(&first, &server, PREFIX, CLUSTER);
    let lease = format!("{PREFIX}/_slurm_usage/lease/cluster={CLUSTER}.json");
    let lease_json: serde_json::Value =
        serde_json::from_slice(&server.get(&lease).expect("the first writer's lease")).unwrap();
    let holder = lease_json["holder"].as_str().expect("a holder").to_string();
    assert!(lease_json["expires"].is_string(), "{lease_json}");

    let out = run(&second, &server, &["collect", "--days", "2"]);
    assert_eq!(out.status.code(), Some(0));
    line_starting(&stdout(&out), "lake:");
    let out = run(&second, &server, &["lake", "sync"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("held by"), "{err}");
    assert!(
        err.contains(&holder),
        "the message names the holder {holder:?}: {err}"
    );
    let s = status(&second, &server);
    assert_eq!(s["holder"], holder.as_str());
    assert_eq!(
        pending(&s),
        local_partitions(&second)
            .into_keys()
            .collect::<BTreeSet<_>>()
    );
    assert_mirrors(&first, &server, PREFIX, CLUSTER);

    let out = run(&first, &server, &["lake", "sync"]);
    assert_eq!(out.status.code(), Some(0), "the holder goes on");
}

/// A lease not renewed within `lease_ttl` (its writer crashed, or moved) is taken over by
/// the next writer, which the old one then finds holding it.
#[test]
fn an_expired_lease_is_taken_over() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let (first, second) = (Env::new(""), Env::new(""));
    for env in [&first, &second] {
        let url = server.url(PREFIX);
        env.write_config(&format!(
            "\n[lake]\nurl = \"{url}\"\ncluster = \"{CLUSTER}\"\nlease_ttl = \"1s\"\ndrop_fields = []\n"
        ));
        env.set_output(day(1), &two_jobs(day(1), 11, None));
    }
    let lease = format!("{PREFIX}/_slurm_usage/lease/cluster={CLUSTER}.json");
    let holder = || -> String {
        let bytes = server.get(&lease).expect("a lease object");
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["holder"].as_str().expect("a holder").to_string()
    };
    assert!(run(&first, &server, &["collect", "--days", "1"])
        .status
        .success());
    let old = holder();
    std::thread::sleep(Duration::from_millis(2100));
    // The second writer's collect takes the expired lease over in its upload round.
    assert!(run(&second, &server, &["collect", "--days", "1"])
        .status
        .success());
    let out = run(&second, &server, &["lake", "sync"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the expired lease is taken over"
    );
    assert_mirrors(&second, &server, PREFIX, CLUSTER);
    assert_ne!(holder(), old, "the lease names the new writer");
}

/// Numbers equal up to rounding of the summation order; everything else exactly.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} != {y}"
            );
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Object(x), Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}: keys"
            );
            for (k, v) in x {
                assert_json_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// Two clusters (their sacct lines say so; the lake config names none) in one lake:
/// `analyze --data-dir s3://…` equals the two local archives, per cluster and with
/// `--cluster`; `job` finds a job there; pyarrow and polars see every job once.
#[test]
fn analyze_reads_a_lake_of_two_clusters() {
    let Some(server) = MotoServer::start("lake-bucket") else {
        return;
    };
    let clusters = [("alpha", Env::new("")), ("beta", Env::new(""))];
    for (i, (name, env)) in clusters.iter().enumerate() {
        configure(env, &server.url(PREFIX), None);
        for n in 1..=2 {
            let first = 1000 * (i as u64 + 1) + 10 * n;
            env.set_output(day(n), &two_jobs(day(n), first, Some(name)));
        }
        assert!(run(env, &server, &["collect", "--days", "2"])
            .status
            .success());
        assert_mirrors(env, &server, PREFIX, name);
    }
    let report = ["analyze", "--days", "2", "--format", "json", "--no-sinfo"];
    let json = |o: Output| -> serde_json::Value {
        assert!(o.status.success());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let alpha = &clusters[0].1;
    let url = server.url(PREFIX);
    let mut lake_args = vec!["--data-dir", url.as_str()];
    lake_args.extend(report);
    let lake = json(run(alpha, &server, &lake_args));
    let locals: Vec<serde_json::Value> = clusters
        .iter()
        .map(|(_, env)| json(run(env, &server, &report)))
        .collect();

    let mut want = Vec::new();
    for (local, (name, _)) in locals.iter().zip(&clusters) {
        let entries = local["clusters"].as_array().expect("a `clusters` list");
        assert_eq!(entries.len(), 1, "one cluster per local archive");
        assert_eq!(entries[0]["cluster"], *name);
        want.push(entries[0].clone());
    }
    let mut have = lake["clusters"]
        .as_array()
        .expect("a `clusters` list")
        .clone();
    have.sort_by_key(|c| c["cluster"].as_str().unwrap_or_default().to_string());
    assert_json_close(
        &serde_json::Value::Array(have),
        &serde_json::Value::Array(want),
        "clusters",
    );
    assert_eq!(
        lake["summary"]["jobs"].as_u64().unwrap(),
        locals
            .iter()
            .map(|l| l["summary"]["jobs"].as_u64().unwrap())
            .sum::<u64>()
    );

    for ((name, _), local) in clusters.iter().zip(&locals) {
        let mut args = lake_args.clone();
        args.extend(["--cluster", name]);
        let one = json(run(alpha, &server, &args));
        assert_json_close(
            &one["summary"],
            &local["summary"],
            &format!("summary of {name}"),
        );
    }

    let job = "2010"; // beta's first job of day 1
    let out = run(
        alpha,
        &server,
        &["--data-dir", &url, "job", job, "--cluster", "beta"],
    );
    assert!(out.status.success());
    assert!(stdout(&out).contains(job));

    if !have_engines() {
        return;
    }
    let seen = read_lake(&url, Some(&server));
    let mut ids = BTreeMap::new();
    for (name, env) in &clusters {
        let mut jobs: Vec<String> = (1..=2)
            .flat_map(|n| env.jobs(day(n)))
            .map(|j| j.job_id.to_string())
            .collect();
        jobs.sort();
        ids.insert(name.to_string(), jobs);
    }
    let total: usize = ids.values().map(Vec::len).sum();
    for engine in ["pyarrow", "polars"] {
        let e = &seen[engine];
        assert_eq!(e["rows"], total, "{engine}: every job once");
        assert_eq!(e["distinct"], total, "{engine}");
        assert_eq!(e["clusters"], serde_json::json!(ids), "{engine}");
    }
}

/// A `file://` lake (no S3 needed): the same Hive layout on disk, read by the engines.
#[test]
fn a_file_lake_mirrors_the_archive() {
    let env = Env::new("");
    let lake = env.path().join("lake");
    configure(&env, &format!("file://{}", lake.display()), Some(CLUSTER));
    for n in 0..=2 {
        env.set_output(day(n), &two_jobs(day(n), 100 * n + 1, None));
    }
    let out = output_within(&mut env.command(&["collect", "--days", "2"]), LIMIT).unwrap();
    assert!(out.status.success());
    line_starting(&stdout(&out), "lake:");
    for ((kind, date), path) in local_partitions(&env) {
        let object = lake.join(key("", &kind, CLUSTER, &date).trim_start_matches('/'));
        assert!(
            std::fs::read(&object).ok() == Some(std::fs::read(&path).unwrap()),
            "{} is not {}",
            object.display(),
            path.display()
        );
    }
    let out = output_within(&mut env.command(&["lake", "status", "--json"]), LIMIT).unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pending(&s), BTreeSet::new());
    // Nothing else in the lake: no temp file next to the objects.
    let want: BTreeSet<String> = local_partitions(&env)
        .into_keys()
        .map(|(kind, date)| key("", &kind, CLUSTER, &date)[1..].to_string())
        .collect();
    for (path, _) in snapshot_bytes(&lake) {
        let rel = path
            .strip_prefix(&lake)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            want.contains(&rel) || rel.starts_with("_slurm_usage/"),
            "unexpected file in the lake: {rel}"
        );
    }

    if have_engines() {
        let seen = read_lake(lake.to_str().unwrap(), None);
        for engine in ["pyarrow", "polars"] {
            assert_eq!(seen[engine]["rows"], 6, "{engine}");
            assert_eq!(seen[engine]["distinct"], 6, "{engine}");
        }
    }
}
