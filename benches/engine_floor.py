"""engine_floor.py - what Polars' native engine (the Python tool's own, without its per-row
Python code) spends on the two steps of a collect that do not depend on our design: reading
sacct's text into one string column per field, and writing those rows as a zstd Parquet
file. Run by `benches/vs_python.sh` with the Python tool's venv, which has Polars.

    python engine_floor.py DELIMITER RAW_DIR SACCT_FILE...

SACCT_FILE: the cached sacct outputs one `collect` read; RAW_DIR: the raw partitions it
wrote (the rows written again). Each step runs once on one thread (`POLARS_MAX_THREADS=1`
is set by the caller for that pass) and prints CPU (user + system) and wall seconds.
"""

import glob
import os
import resource
import sys
import tempfile
import time

import polars as pl


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def is_query_output(path: str, delimiter: str) -> bool:
    """Calls that are not a query (`sacct --version`) print no delimiter."""
    with open(path, "rb") as f:
        return delimiter.encode() in f.read(4096)


def timed(label: str, step) -> None:
    c0, t0 = cpu(), time.perf_counter()
    detail = step()
    print(f"  {label}: cpu {cpu() - c0:.2f} s, wall {time.perf_counter() - t0:.2f} s ({detail})")


def main() -> None:
    delimiter, raw_dir = sys.argv[1], sys.argv[2]
    files = [f for f in sys.argv[3:] if is_query_output(f, delimiter)]
    size = sum(os.path.getsize(f) for f in files)

    def read() -> str:
        rows = 0
        for f in files:
            # Every field as text, no quoting: what the raw archive keeps.
            df = pl.read_csv(
                f,
                separator=delimiter,
                has_header=False,
                infer_schema=False,
                quote_char=None,
                truncate_ragged_lines=True,
            )
            rows += df.height
        return f"{size / 1e6:.1f} MB of sacct text, {rows} rows"

    raw = pl.concat(
        [pl.read_parquet(f) for f in sorted(glob.glob(os.path.join(raw_dir, "*.parquet")))],
        how="diagonal_relaxed",
    )

    def write() -> str:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "raw.parquet")
            raw.write_parquet(out, compression="zstd", compression_level=1, statistics=False)
            return f"{raw.height} rows x {raw.width} columns, {os.path.getsize(out)} bytes"

    threads = os.environ.get("POLARS_MAX_THREADS", "all")
    print(f"Polars {pl.__version__}, threads: {threads}")
    timed("read the sacct text into string columns", read)
    timed("write the raw rows to zstd-1 Parquet", write)


if __name__ == "__main__":
    main()
