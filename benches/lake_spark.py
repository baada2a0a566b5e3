#!/usr/bin/env python3
"""Reads a local lake with Spark, as an analyst would (issue #14; not CI).

    benches/lake_spark.py /srv/lake            # a file:// lake's directory
    benches/lake_spark.py /srv/lake --compare /var/lib/slurm-usage

Needs pyspark (pip install pyspark) and a JDK (java on PATH); says so and exits 0 without
them. Loads <lake>/processed with spark.read.parquet (Hive partition discovery: cluster and
date become columns), prints rows, distinct (cluster, job_id) and CPU hours per cluster, and
the time each step took. With --compare DATA_DIR it checks that every job of that local
data dir is in the lake once, with the same cpu_hours_reserved.
"""
import argparse
import shutil
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("lake")
    ap.add_argument("--compare", metavar="DATA_DIR")
    args = ap.parse_args()
    try:
        from pyspark.sql import SparkSession, functions as F
    except ImportError:
        print("skipped: pyspark is not installed (pip install pyspark)")
        return 0
    if shutil.which("java") is None:
        print("skipped: no java on PATH (Spark needs a JDK)")
        return 0
    t0 = time.time()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("slurm-usage lake")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    t1 = time.time()
    df = spark.read.parquet(f"{args.lake.rstrip('/')}/processed")
    rows = df.count()
    distinct = df.select("cluster", "job_id").distinct().count()
    per_cluster = (
        df.groupBy("cluster")
        .agg(F.count("*").alias("jobs"), F.sum("cpu_hours_reserved").alias("cpu_hours"))
        .orderBy("cluster")
        .collect()
    )
    t2 = time.time()
    print(f"spark start {t1 - t0:.1f} s, read + 3 queries {t2 - t1:.1f} s")
    print(f"rows {rows}, distinct (cluster, job_id) {distinct}")
    for r in per_cluster:
        print(f"  cluster={r['cluster']}: {r['jobs']} jobs, {r['cpu_hours']:.1f} CPU hours")
    ok = True
    if args.compare:
        local = spark.read.parquet(f"{args.compare.rstrip('/')}/processed/*.parquet")
        a = local.select("job_id", "cpu_hours_reserved").groupBy("job_id").agg(F.max("cpu_hours_reserved").alias("c"))
        b = df.select("job_id", "cpu_hours_reserved").groupBy("job_id").agg(F.max("cpu_hours_reserved").alias("c"))
        missing = a.join(b, "job_id", "left_anti").count()
        differ = a.join(b, "job_id").where(F.abs(a.c - b.c) > 1e-9).count()
        print(f"compare with {args.compare}: {missing} jobs missing from the lake, {differ} differ")
        ok = missing == 0 and differ == 0 and rows == distinct
    spark.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
