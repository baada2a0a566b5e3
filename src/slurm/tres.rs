//! TRES and GRES strings: what a job was given or used (`cpu=2,mem=100M,gres/gpu:a100=4`,
//! sacct's AllocTRES and TRESUsageInTot) and what a node holds (`gpu:a100:4(S:0-1)`, sinfo's
//! `%G`).
//!
//! Pure functions; a value that cannot be read counts as absent (`None`, or zero GPUs).
//!
//! GPU usage (`gres/gpuutil`, `gres/gpumem`) appears in the TRESUsageIn* strings of Slurm
//! 23.02 and later when the site accounts `gres/gpu` and detects GPUs with NVML or RSMI;
//! `docs/metrics.md` ("GPU and energy: what Slurm records") says what the numbers mean.

use super::units::{parse_duration, parse_memory_mb, trim};

/// Iterates the `key=value` pairs of a TRES string (`cpu=2,mem=100M,gres/gpu:a100=4`).
pub fn tres_pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The value of `key` in a TRES string (`key=value` at the start or after a comma).
pub fn tres_value<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key).map(|i| i + from) {
        let after = i + key.len();
        if (i == 0 || s.as_bytes()[i - 1] == b',') && s.as_bytes().get(after) == Some(&b'=') {
            let rest = &s[after + 1..];
            return Some(rest.split(',').next().unwrap_or("").trim());
        }
        from = after;
    }
    None
}

/// `mem=` of a TRES string, in MiB.
pub fn tres_mem_mb(s: &str) -> Option<f64> {
    tres_value(s, "mem").and_then(parse_memory_mb)
}

/// `cpu=` of a TRESUsageInTot string (a duration there), in seconds.
pub fn tres_cpu_seconds(s: &str) -> Option<f64> {
    tres_value(s, "cpu").and_then(parse_duration)
}

/// Slurm's "no value" and "infinite" sentinels (NO_VAL64, INFINITE64, and the 32-bit
/// NO_VAL/INFINITE) are near the top of their types; a GPU plugin that cannot read a device
/// stores INFINITE64, which sacct prints as a huge number. Anything from 2^31 up is one of
/// them, never a percentage.
const SENTINEL_FROM: u64 = 1 << 31;

/// `gres/gpuutil=` of a TRESUsageIn* string: the GPU utilisation in percent that the step's
/// tasks were sampled at, added over the tasks in `TRESUsageInTot` (so it can exceed 100
/// when a step has several tasks or GPUs). `None` when the key is absent (no GPU
/// accounting) or holds a sentinel.
pub fn tres_gpu_util(s: &str) -> Option<f64> {
    tres_value(s, "gres/gpuutil").and_then(gpu_util_of)
}

fn gpu_util_of(v: &str) -> Option<f64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = v.parse().ok()?;
    (n < SENTINEL_FROM).then_some(n as f64)
}

/// `gres/gpumem=` of a TRESUsageIn* string, in MiB. Slurm stores bytes; sacct prints them
/// with a unit (`36266M`), or bare bytes with `--noconvert`. `None` when absent, unreadable
/// or a sentinel (2^63 bytes or more, ~8 EiB).
pub fn tres_gpu_mem_mb(s: &str) -> Option<f64> {
    tres_value(s, "gres/gpumem").and_then(gpu_mem_mb_of)
}

fn gpu_mem_mb_of(v: &str) -> Option<f64> {
    const SENTINEL_MB: f64 = (1u64 << 43) as f64; // 2^63 bytes in MiB
    parse_memory_mb(v).filter(|mb| *mb < SENTINEL_MB)
}

/// The four keys the collector reads from a step's TRESUsageInTot, found in one walk over
/// the string: every sacct step line asks for all four, and four searches cost about four
/// times one walk. Each getter means what the single-key function of the same name means.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TresUsage<'a> {
    cpu: Option<&'a str>,
    mem: Option<&'a str>,
    gpu_util: Option<&'a str>,
    gpu_mem: Option<&'a str>,
}

impl<'a> TresUsage<'a> {
    /// One walk over the bytes, noting each entry's first `=` and ending it at `,`: what
    /// `split(',')` then `split_once('=')` give, without setting up a searcher for every
    /// few bytes (a TRES string on every sacct line).
    pub fn parse(s: &'a str) -> Self {
        let mut u = TresUsage::default();
        let (mut entry, mut eq) = (0, None);
        for (i, b) in s.bytes().chain([b',']).enumerate() {
            match b {
                b'=' if eq.is_none() => eq = Some(i),
                b',' => {
                    if let Some(e) = eq {
                        u.take(&s[entry..e], &s[e + 1..i]);
                    }
                    (entry, eq) = (i + 1, None);
                }
                _ => {}
            }
        }
        u
    }

    fn take(&mut self, key: &str, value: &'a str) {
        let slot = match key {
            "cpu" => &mut self.cpu,
            "mem" => &mut self.mem,
            "gres/gpuutil" => &mut self.gpu_util,
            "gres/gpumem" => &mut self.gpu_mem,
            _ => return,
        };
        // The first occurrence wins, as in `tres_value`.
        slot.get_or_insert(trim(value));
    }

    /// As [`tres_cpu_seconds`].
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.cpu.and_then(parse_duration)
    }

    /// As [`tres_mem_mb`].
    pub fn mem_mb(&self) -> Option<f64> {
        self.mem.and_then(parse_memory_mb)
    }

    /// As [`tres_gpu_util`].
    pub fn gpu_util(&self) -> Option<f64> {
        self.gpu_util.and_then(gpu_util_of)
    }

    /// As [`tres_gpu_mem_mb`].
    pub fn gpu_mem_mb(&self) -> Option<f64> {
        self.gpu_mem.and_then(gpu_mem_mb_of)
    }
}

/// GPUs in an AllocTRES string: `gres/gpu=N`, or when only typed entries exist
/// (`gres/gpu:a100=2,gres/gpu:v100=1`), their sum.
pub fn tres_gpus(s: &str) -> i64 {
    let mut untyped = None;
    let mut typed = 0i64;
    for (k, v) in tres_pairs(s) {
        let Some(kind) = k.strip_prefix("gres/gpu") else {
            continue;
        };
        let n = v.parse::<i64>().unwrap_or(0).max(0);
        if kind.is_empty() {
            untyped = Some(n);
        } else if kind.starts_with(':') {
            typed = typed.saturating_add(n);
        }
    }
    untyped.unwrap_or(typed)
}

/// GPUs in a GRES string: `gpu:a100:4(S:0-1)` -> 4, `gpu:2,gpu:v100:1` -> 3, `(null)` -> 0.
/// Only `gpu` entries count (`shard`, `mps` are not GPUs); a typed entry without a count
/// (`gpu:a100`) is one GPU.
pub fn gres_gpus(gres: &str) -> u64 {
    let mut total = 0;
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = gres.as_bytes();
    let mut entries = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                entries.push(&gres[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&gres[start..]);
    for e in entries {
        let e = e.trim();
        let e = e.split('(').next().unwrap_or("");
        let mut parts = e.split(':');
        if parts.next() != Some("gpu") {
            continue;
        }
        let rest: Vec<&str> = parts.collect();
        total += match rest.last() {
            None => 1,
            Some(last) => last.trim().parse::<u64>().unwrap_or(1),
        };
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_walk_reads_what_the_single_key_functions_read() {
        for t in [
            "",
            "cpu=00:10:00,energy=0,fs/disk=8100,mem=365977K,pages=0,vmem=731954K",
            "vmem=9G,mem=2G,cpu=1-00:00:00",
            "cpu=02:00:00,gres/gpumem=36266M,gres/gpuutil=62,mem=628748K",
            "gres/gpuutil=4294967294,gres/gpumem=9223372036854775807",
            "mem=1G,mem=2G,cpu=x,gres/gpuutil=,gres/gpumem=12",
            "mem ,=3, cpu=5",
        ] {
            let u = TresUsage::parse(t);
            assert_eq!(u.cpu_seconds(), tres_cpu_seconds(t), "{t}");
            assert_eq!(u.mem_mb(), tres_mem_mb(t), "{t}");
            assert_eq!(u.gpu_util(), tres_gpu_util(t), "{t}");
            assert_eq!(u.gpu_mem_mb(), tres_gpu_mem_mb(t), "{t}");
        }
        assert_eq!(TresUsage::parse("mem=1G,mem=2G").mem_mb(), Some(1024.0));
    }

    /// The byte walk finds what `split(',')` and `split_once('=')` found, on random texts
    /// made of keys, separators and whitespace.
    #[test]
    fn the_byte_walk_agrees_with_the_std_splitters() {
        fn std_parse(s: &str) -> [Option<&str>; 4] {
            let mut u = [None; 4];
            for (k, v) in s.split(',').filter_map(|kv| kv.split_once('=')) {
                let i = match k {
                    "cpu" => 0,
                    "mem" => 1,
                    "gres/gpuutil" => 2,
                    "gres/gpumem" => 3,
                    _ => continue,
                };
                u[i].get_or_insert(v.trim());
            }
            u
        }
        let alphabet = [
            "cpu",
            "mem",
            "gres/gpuutil",
            "gres/gpumem",
            "vmem",
            "=",
            "=",
            ",",
            ",",
            " ",
            "7",
            "1G",
            "00:01",
            "\u{a0}",
        ];
        let mut rng = crate::synth::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            let text = rng.text(&alphabet, 12);
            let u = TresUsage::parse(&text);
            assert_eq!(
                [u.cpu, u.mem, u.gpu_util, u.gpu_mem],
                std_parse(&text),
                "{text:?}"
            );
        }
    }

    /// Found by the fuzzer: huge counts must not overflow (a panic in debug builds).
    #[test]
    fn huge_gpu_counts_saturate() {
        let max = i64::MAX.to_string();
        assert_eq!(
            tres_gpus(&format!("gres/gpu:a={max},gres/gpu:b={max}")),
            i64::MAX
        );
    }

    #[test]
    fn tres_values() {
        let alloc = "billing=2,cpu=2,mem=100M,node=1";
        assert_eq!(tres_mem_mb(alloc), Some(100.0));
        assert_eq!(tres_gpus(alloc), 0);
        assert_eq!(tres_gpus("cpu=8,gres/gpu=4,gres/gpu:a100=4"), 4);
        assert_eq!(tres_gpus("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1"), 3);
        assert_eq!(tres_gpus("cpu=8,gres/gpumem=40G"), 0);
        let usage = "cpu=00:00:05,energy=0,fs/disk=8100,mem=6108K,pages=0,vmem=13080K";
        assert_eq!(tres_mem_mb(usage), Some(6108.0 / 1024.0));
        assert_eq!(tres_cpu_seconds(usage), Some(5.0));
        assert_eq!(tres_mem_mb(""), None);
        assert_eq!(tres_mem_mb("vmem=5G,mem=1G"), Some(1024.0));
        assert_eq!(tres_mem_mb("vmem=5G"), None);
        assert_eq!(
            tres_value("gres/gpumem=4,gres/gpu=2", "gres/gpu"),
            Some("2")
        );
    }

    /// The shapes Slurm's own documentation and source give: `sacct --format=TRESUsageInAve`
    /// in gres.html (23.02 and later), raw bytes with `--noconvert`, the INFINITE64 a GPU
    /// plugin stores for a device it cannot read, and a site without GPU accounting.
    #[test]
    fn gpu_usage_values() {
        let ave = "cpu=00:00:11,energy=0,fs/disk=87613,gres/gpumem=36266M,gres/gpuutil=100,mem=628748K,pages=0,vmem=0";
        assert_eq!(tres_gpu_util(ave), Some(100.0));
        assert_eq!(tres_gpu_mem_mb(ave), Some(36266.0));
        // --noconvert: bytes.
        let raw = "cpu=00:56:24,energy=0,fs/disk=350130624578,gres/gpumem=40777023488,gres/gpuutil=100,mem=10621726720";
        assert_eq!(tres_gpu_mem_mb(raw), Some(40777023488.0 / 1048576.0));
        // Two tasks' peaks added in TRESUsageInTot: more than 100.
        assert_eq!(
            tres_gpu_util("gres/gpumem=2G,gres/gpuutil=187"),
            Some(187.0)
        );
        // The .extern step of a GPU job: measured zero, which is a value.
        let ext = "cpu=00:00:00,energy=0,fs/disk=5273,gres/gpumem=0,gres/gpuutil=0,mem=262144";
        assert_eq!(tres_gpu_util(ext), Some(0.0));
        assert_eq!(tres_gpu_mem_mb(ext), Some(0.0));
        // INFINITE64 and NO_VAL: not a measurement.
        let inf = "gres/gpumem=18446744073709551615,gres/gpuutil=18446744073709551615";
        assert_eq!(tres_gpu_util(inf), None);
        assert_eq!(tres_gpu_mem_mb(inf), None);
        assert_eq!(tres_gpu_util("gres/gpuutil=4294967294"), None);
        // No GPU accounting (Slurm 22.05, or AccountingStorageTRES without gres/gpu).
        let none = "cpu=00:00:05,energy=0,fs/disk=8100,mem=6108K,pages=0,vmem=13080K";
        assert_eq!(tres_gpu_util(none), None);
        assert_eq!(tres_gpu_mem_mb(none), None);
        assert_eq!(tres_gpu_util(""), None);
        assert_eq!(tres_gpu_util("gres/gpuutil="), None);
        assert_eq!(tres_gpu_util("gres/gpuutil=-3"), None);
        // gres/gpu itself is a count, not utilisation, whatever the order.
        assert_eq!(tres_gpu_util("gres/gpu=4,gres/gpuutil=55"), Some(55.0));
        assert_eq!(
            tres_gpus("gres/gpuutil=55,gres/gpumem=4G,gres/gpu:a100=2"),
            2
        );
    }

    #[test]
    fn gres_forms() {
        assert_eq!(gres_gpus("(null)"), 0);
        assert_eq!(gres_gpus("gpu:4"), 4);
        assert_eq!(gres_gpus("gpu:a100:4(S:0-1)"), 4);
        assert_eq!(gres_gpus("gpu:tesla:2(S:0),gpu:k80:1(S:1)"), 3);
        assert_eq!(gres_gpus("gpu:a100:4(S:0-1),shard:8"), 4);
        assert_eq!(gres_gpus("mps:100,gpu:2"), 2);
        assert_eq!(gres_gpus("gpu:a100"), 1);
        assert_eq!(gres_gpus("gpu:a100:8(IDX:0-7)"), 8);
    }
}
