//! Host lists as SLURM prints them (`node[001-003,010]`, `gpu-[1-2],cpu01`), expanded to node
//! names. sacct's NodeList, squeue's `%N` and sinfo's node names all use this form.
//!
//! Pure and bounded: nested ranges multiply, so an expansion stops at [`MAX_NODES`] names.

use super::units::is_blank;

/// At most this many names from one host list: nested ranges multiply (`a[0-99999]b[0-99999]`
/// would be 10^10 names), and no cluster has more nodes.
pub const MAX_NODES: usize = 200_000;

/// Expands a Slurm host list: `node[001-003,010]` -> node001, node002, node003, node010;
/// `gpu-[1-2],cpu01` -> gpu-1, gpu-2, cpu01. `None assigned` and blanks are no nodes.
pub fn expand_nodelist(s: &str) -> Vec<String> {
    let s = s.trim();
    if is_blank(s) || s == "None assigned" {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Split on commas that are outside brackets.
    let mut depth = 0;
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b',' if depth == 0 => {
                expand_one(&s[start..i], &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_one(&s[start..], &mut out);
    out
}

/// Expands one comma-free item (`rack[1-2]-n[1-2]`) onto `out`, its suffix first so that
/// every range of the prefix is combined with every name of the suffix.
fn expand_one(item: &str, out: &mut Vec<String>) {
    let item = item.trim();
    if item.is_empty() || out.len() >= MAX_NODES {
        return;
    }
    let Some(open) = item.find('[') else {
        out.push(item.to_string());
        return;
    };
    let Some(close) = item[open..].find(']').map(|c| c + open) else {
        out.push(item.to_string());
        return;
    };
    let (prefix, ranges, suffix) = (&item[..open], &item[open + 1..close], &item[close + 1..]);
    let mut tails = Vec::new();
    expand_one(suffix, &mut tails);
    if tails.is_empty() {
        tails.push(String::new());
    }
    for part in ranges.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        match (lo.parse::<u64>(), hi.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b && b - a < 100_000 => {
                let width = lo.len();
                for n in a..=b {
                    for t in &tails {
                        if out.len() >= MAX_NODES {
                            return;
                        }
                        out.push(format!("{prefix}{n:0width$}{t}"));
                    }
                }
            }
            _ => out.push(format!("{prefix}{part}{suffix}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodelists() {
        assert_eq!(expand_nodelist("vm"), ["vm"]);
        assert_eq!(
            expand_nodelist("node[001-003,010]"),
            ["node001", "node002", "node003", "node010"]
        );
        assert_eq!(
            expand_nodelist("gpu-[1-2],cpu-[01-03]"),
            ["gpu-1", "gpu-2", "cpu-01", "cpu-02", "cpu-03"]
        );
        assert_eq!(
            expand_nodelist("rack[1-2]-n[1-2]"),
            ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
        );
        assert!(expand_nodelist("None assigned").is_empty());
        assert_eq!(
            expand_nodelist("a[0-99999]b[0-99999]").len(),
            MAX_NODES,
            "bounded"
        );
        assert!(expand_nodelist("").is_empty());
    }
}
