#!/usr/bin/env python3
"""Reads a lake's processed partitions with two engines other than slurm-usage and prints
what each saw, so tests/lake.rs can compare it with the archive and with `analyze`.

  read_lake.py LAKE

LAKE is `s3://bucket/prefix` (endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP), `file:///dir` or a directory. Both
engines read `<LAKE>/processed` as a Hive-partitioned dataset
(`processed/cluster=<c>/date=<YYYY-MM-DD>/part-0.parquet`):

- pyarrow: `pyarrow.dataset.dataset(..., partitioning="hive")`;
- polars: `pl.scan_parquet("<LAKE>/processed/**/*.parquet", hive_partitioning=True)`.

Each file also holds a `cluster` column. Both engines then give the column the value of the
`cluster=` path segment (the file's own value is dropped, and a filter on `cluster` prunes
by path); the two agree as long as the writer names each partition after its rows' cluster.

Prints one JSON object: for each engine {"rows": N, "distinct": number of distinct
(cluster, job_id), "clusters": {cluster: [sorted distinct job ids]}, "duplicates":
[[cluster, job_id], ...] seen more than once}. Exit 1 (message on stderr) when a file does
not read as Parquet or the lake cannot be listed.
"""
import collections
import json
import os
import sys
from urllib.parse import urlparse

import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"read_lake.py: {name} is not set (needed for an s3:// lake)")
    return value


def summary(pairs):
    """pairs: (cluster, job_id) per row."""
    counts = collections.Counter(pairs)
    clusters = collections.defaultdict(set)
    for cluster, job in counts:
        clusters[cluster].add(job)
    return {
        "rows": sum(counts.values()),
        "distinct": len(counts),
        "clusters": {c: sorted(ids) for c, ids in sorted(clusters.items())},
        "duplicates": sorted([c, j] for (c, j), n in counts.items() if n > 1),
    }


def with_pyarrow(lake):
    if lake.scheme == "s3":
        endpoint = urlparse(env("AWS_ENDPOINT_URL"))
        fs = pyarrow.fs.S3FileSystem(
            access_key=env("AWS_ACCESS_KEY_ID"),
            secret_key=env("AWS_SECRET_ACCESS_KEY"),
            region=env("AWS_REGION", "us-east-1"),
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme or "https",
        )
        root = f"{lake.netloc}{lake.path}".rstrip("/") + "/processed"
    else:
        fs = pyarrow.fs.LocalFileSystem()
        root = lake.path.rstrip("/") + "/processed"
    dataset = ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["cluster", "job_id"])
    return summary(zip(table.column("cluster").to_pylist(), table.column("job_id").to_pylist()))


def with_polars(lake):
    if lake.scheme == "s3":
        source = f"s3://{lake.netloc}{lake.path.rstrip('/')}/processed/**/*.parquet"
        options = {
            "aws_access_key_id": env("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": env("AWS_SECRET_ACCESS_KEY"),
            "aws_region": env("AWS_REGION", "us-east-1"),
            "aws_endpoint_url": env("AWS_ENDPOINT_URL"),
            "aws_allow_http": os.environ.get("AWS_ALLOW_HTTP", "false"),
        }
    else:
        source = f"{lake.path.rstrip('/')}/processed/**/*.parquet"
        options = None
    frame = (
        pl.scan_parquet(source, hive_partitioning=True, storage_options=options)
        .select("cluster", "job_id")
        .collect()
    )
    return summary(zip(frame["cluster"].to_list(), frame["job_id"].to_list()))


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    lake = urlparse(argv[1])
    if lake.scheme not in ("s3", "file", ""):
        sys.exit(f"read_lake.py: {argv[1]}: expected s3://bucket/prefix, file:///dir or a dir")
    if lake.scheme == "":
        lake = urlparse("file://" + os.path.abspath(argv[1]))
    out = {}
    for name, read in [("pyarrow", with_pyarrow), ("polars", with_polars)]:
        try:
            out[name] = read(lake)
        except Exception as e:  # what the engine said, for the failing test's output
            sys.exit(f"read_lake.py: {name} cannot read {argv[1]}/processed: {type(e).__name__}: {e}")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv)
