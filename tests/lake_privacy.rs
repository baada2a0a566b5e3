//! What leaves the head node (issue #19): `[lake] drop_fields` (default `SubmitLine`,
//! `WorkDir`, `Comment`) and `pseudonymise` with a site key, against a `file://` lake (the
//! same upload code as S3 above the store; `tests/lake.rs` covers S3 itself).
//!
//! The built binary against a fake sacct ([`Env`]). The lake's objects are searched both as
//! bytes and decoded (every value of every column as text), since zstd pages would hide a
//! leak from a byte search alone.

mod util;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use arrow_array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use util::*;

/// Text only the dropped fields carry.
const SECRETS: [&str; 3] = [
    "workdir-secret-7f3",
    "comment-secret-7f3",
    "submitline-secret-7f3",
];

/// Two finished jobs of `user` on `date` whose free-text fields hold [`SECRETS`].
fn secret_jobs(date: chrono::NaiveDate, first: u64, user: &str) -> Vec<String> {
    let mut lines = finished_job(&first.to_string(), user, &at(date, "01:00"), "COMPLETED");
    lines.extend(finished_job(
        &(first + 1).to_string(),
        user,
        &at(date, "02:00"),
        "COMPLETED",
    ));
    let lines = with_field(&lines, "WorkDir", &format!("/home/{user}/{}", SECRETS[0]));
    let lines = with_field(&lines, "Comment", SECRETS[1]);
    with_field(
        &lines,
        "SubmitLine",
        &format!("sbatch --{} x.sh", SECRETS[2]),
    )
}

/// The env's config with a `file://` lake in `lake` and `extra` lines under `[lake]`.
fn configure(env: &Env, lake: &Path, extra: &str) {
    env.write_config(&format!(
        "\n[lake]\nurl = \"file://{}\"\n{extra}\n",
        lake.display()
    ));
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every value of every column of a Parquet file, as text, plus its column names.
fn decoded(path: &Path) -> (Vec<String>, String) {
    let bytes = bytes::Bytes::from(std::fs::read(path).unwrap());
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut text = String::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        for col in batch.columns() {
            let Ok(s) = arrow_cast::cast(col, &arrow_schema::DataType::Utf8) else {
                continue;
            };
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..s.len() {
                if s.is_valid(i) {
                    text.push_str(s.value(i));
                    text.push('\n');
                }
            }
        }
    }
    (names, text)
}

/// The distinct values of `column` in a Parquet file.
fn column_values(path: &Path, column: &str) -> BTreeSet<String> {
    let bytes = bytes::Bytes::from(std::fs::read(path).unwrap());
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let mut out = BTreeSet::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let col = batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("{} has no {column}", path.display()));
        let s = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).unwrap();
        let s = s.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..s.len()).map(|i| s.value(i).to_string()));
    }
    out
}

/// A key file with a known secret (0600).
fn write_key(path: &Path, byte: u8) {
    std::fs::write(path, format!("{}\n", format!("{byte:02x}").repeat(32))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_lake_built_with_the_defaults_holds_none_of_the_dropped_text() {
    let env = Env::new("");
    let lake = env.path().join("lake");
    configure(&env, &lake, "cluster = \"hpc\"");
    for n in 1..=2 {
        env.set_output(day(n), &secret_jobs(day(n), 10 * n, "alice"));
    }
    let out = env.run(&["collect", "--days", "2"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 pending"), "{}", stdout(&out));

    // The local archive keeps everything: the search below can find what it looks for.
    let (_, local_raw) = decoded(&env.raw(day(1)));
    for s in SECRETS {
        assert!(local_raw.contains(s), "the local raw file holds {s}");
    }
    let objects = files(&lake);
    let parquet: Vec<&PathBuf> = objects
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parquet.len(), 6, "{objects:?}");
    for p in &objects {
        let bytes = std::fs::read(p).unwrap();
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} holds {s} as bytes",
                p.display()
            );
        }
    }
    for p in &parquet {
        let (names, text) = decoded(p);
        for s in SECRETS {
            assert!(!text.contains(s), "{} holds {s} decoded", p.display());
        }
        for f in ["SubmitLine", "WorkDir", "Comment"] {
            assert!(!names.iter().any(|n| n == f), "{} has {f}", p.display());
        }
        // What is not dropped is there, in clear (no pseudonyms by default; today's
        // partition is empty: the fake sacct has nothing for it).
        if p.to_string_lossy().contains("/raw/") && !text.is_empty() {
            assert!(names.iter().any(|n| n == "JobName") && text.contains("alice"));
        }
    }
    // Processed copies need no rewrite by default: the local file, byte for byte.
    let object = lake.join(format!(
        "processed/cluster=hpc/date={}/part-0.parquet",
        day(1)
    ));
    assert_eq!(
        std::fs::read(object).unwrap(),
        std::fs::read(env.processed(day(1))).unwrap()
    );
    // The HTML report never carries the free text either.
    let html = env.path().join("report.html");
    let out = env.run(&[
        "analyze",
        "--days",
        "3",
        "--no-sinfo",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    for s in SECRETS {
        assert!(!page.contains(s), "the HTML report holds {s}");
    }
}

#[test]
fn pseudonyms_are_stable_across_clusters_and_days_and_differ_across_keys() {
    let shared = tempfile::tempdir().unwrap();
    let lake = shared.path().join("lake");
    let key = shared.path().join("pseudonym.key");
    write_key(&key, 0x11);
    let settings = format!(
        "pseudonymise = [\"user\", \"account\", \"group\"]\npseudonym_key_file = \"{}\"",
        key.display()
    );
    let envs: Vec<(Env, &str)> = ["alpha", "beta"]
        .into_iter()
        .map(|c| (Env::new(""), c))
        .collect();
    for (i, (env, cluster)) in envs.iter().enumerate() {
        configure(env, &lake, &settings);
        for n in 1..=2 {
            let lines = secret_jobs(day(n), 100 * i as u64 + 10 * n, "alice");
            let lines = with_field(&lines, "Cluster", cluster);
            env.set_output(day(n), &with_field(&lines, "Group", "physics"));
        }
        let out = env.run(&["collect", "--days", "2"]);
        assert!(out.status.success());
        assert!(stdout(&out).contains("0 pending"), "{}", stdout(&out));
    }
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for cluster in ["alpha", "beta"] {
        for n in 1..=2 {
            let p = lake.join(format!(
                "processed/cluster={cluster}/date={}/part-0.parquet",
                day(n)
            ));
            users.extend(column_values(&p, "user"));
            groups.extend(column_values(&p, "group"));
            let raw = lake.join(format!(
                "raw/cluster={cluster}/date={}/part-0.parquet",
                day(n)
            ));
            let (_, text) = decoded(&raw);
            assert!(!text.contains("alice"), "{} names alice", raw.display());
            users.extend(
                column_values(&raw, "User")
                    .into_iter()
                    .filter(|u| !u.is_empty()),
            );
        }
    }
    assert_eq!(
        users.len(),
        1,
        "one pseudonym for alice everywhere: {users:?}"
    );
    let alice = users.into_iter().next().unwrap();
    assert!(alice.starts_with("user-") && alice.len() == 21, "{alice}");
    assert_eq!(groups.len(), 1);
    assert!(groups.iter().all(|g| g.starts_with("group-")), "{groups:?}");
    // The local archives keep the names.
    assert!(column_values(&envs[0].0.processed(day(1)), "user").contains("alice"));

    // The reports over the lake show the pseudonyms; whois maps one back on the head node.
    let out = envs[0].0.run(&[
        "--data-dir",
        &format!("file://{}", lake.display()),
        "analyze",
        "--days",
        "3",
        "--no-sinfo",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(names, [alice.as_str()]);
    let out = envs[0].0.run(&["lake", "whois", &alice]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("\"alice\""), "{}", stdout(&out));

    // Another key, another pseudonym for the same name.
    let other = Env::new("");
    let other_lake = other.path().join("lake");
    let other_key = other.path().join("k");
    write_key(&other_key, 0x22);
    configure(
        &other,
        &other_lake,
        &format!(
            "cluster = \"alpha\"\npseudonymise = [\"user\"]\npseudonym_key_file = \"{}\"",
            other_key.display()
        ),
    );
    other.set_output(day(1), &secret_jobs(day(1), 10, "alice"));
    assert!(other.run(&["collect", "--days", "1"]).status.success());
    let theirs = column_values(
        &other_lake.join(format!(
            "processed/cluster=alpha/date={}/part-0.parquet",
            day(1)
        )),
        "user",
    );
    assert_eq!(theirs.len(), 1);
    assert_ne!(theirs.into_iter().next().unwrap(), alice);
}

#[test]
fn a_missing_key_stops_uploads_and_rewrite_moves_to_a_new_key() {
    let env = Env::new("");
    let lake = env.path().join("lake");
    let key = env.path().join("pseudonym.key");
    configure(
        &env,
        &lake,
        &format!(
            "cluster = \"hpc\"\npseudonymise = [\"user\"]\npseudonym_key_file = \"{}\"",
            key.display()
        ),
    );
    env.set_output(day(2), &secret_jobs(day(2), 10, "alice"));
    // No key yet and no upload made with one: the first upload creates it, 0600.
    let out = env.run(&["collect", "--days", "2"]);
    assert!(stdout(&out).contains("0 pending"), "{}", stdout(&out));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let processed = |d| lake.join(format!("processed/cluster=hpc/date={d}/part-0.parquet"));
    let first = column_values(&processed(day(2)), "user");

    // The key goes missing: nothing more goes up, the new date stays pending, and the
    // message says why; the local archive has it.
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    // Today went up empty (no jobs yet); now it has two (today is collected every time).
    let empty = std::fs::read(processed(day(0))).unwrap();
    env.set_output(day(0), &secret_jobs(day(0), 20, "alice"));
    let out = env.run(&["collect", "--days", "2"]);
    assert!(out.status.success(), "collect never fails for the lake");
    let text = stdout(&out);
    assert!(
        text.contains("pseudonym key") && text.contains("missing"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(processed(day(0))).unwrap(),
        empty,
        "nothing uploaded without the key"
    );
    assert!(column_values(&env.processed(day(0)), "user").contains("alice"));
    assert!(
        !key.exists(),
        "a missing key that was used is not silently replaced"
    );
    let out = env.run(&["lake", "sync"]);
    assert_eq!(out.status.code(), Some(1));

    // Back in place: the pending date goes up under the same pseudonyms.
    std::fs::write(&key, &saved).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["lake", "sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(column_values(&processed(day(0)), "user"), first);

    // A new key is refused until `--rewrite`, which re-uploads everything under it.
    write_key(&key, 0x33);
    let mut lines = secret_jobs(day(0), 20, "alice");
    lines.extend(secret_jobs(day(0), 30, "alice"));
    env.set_output(day(0), &lines);
    let out = env.run(&["collect", "--days", "2"]);
    assert!(stdout(&out).contains("not the key"), "{}", stdout(&out));
    let out = env.run(&["lake", "sync", "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let now: BTreeSet<String> = [0, 1, 2]
        .iter()
        .flat_map(|&n| column_values(&processed(day(n)), "user"))
        .collect();
    assert_eq!(now.len(), 1);
    assert_ne!(now, first, "every date under the new key");
}
