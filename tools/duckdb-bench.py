#!/usr/bin/env python3
"""DuckDB baseline for `tributary bench-queries`: the same SQL over the same Parquet files.

Reads JSON lines on stdin and answers each with one JSON line on stdout. The first line names
the tables and views:
  {"tables": {"<name>": ["/path/part-0.parquet", ...]},   # the files of each Delta table's
                                                          # current version
   "views": ["CREATE VIEW ...", ...]}                     # sql/views, as Tributary runs them
and is answered {"duckdb": "<version>", "threads": N}. Every further line is one run of a query,
{"sql": "..."}, answered {"rows": N, "ms": <elapsed>} (timed here: executing and fetching every
row) or {"error": "..."}. The bench sends one run at a time, alternating with its own engine, so
that whatever slows the machine for a while slows both. Needs `pip install duckdb`.
"""
import json
import sys
import time

import duckdb


def answer(document):
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def main():
    spec = json.loads(sys.stdin.readline())
    connection = duckdb.connect()
    for name, files in spec["tables"].items():
        connection.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet({json.dumps(files)})"
        )
    for view in spec["views"]:
        connection.execute(view)
    threads = connection.execute("SELECT current_setting('threads')").fetchone()[0]
    answer({"duckdb": duckdb.__version__, "threads": threads})
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        started = time.perf_counter()
        try:
            rows = len(connection.execute(sql).fetchall())
        except duckdb.Error as error:
            answer({"error": str(error)})
            continue
        answer({"rows": rows, "ms": (time.perf_counter() - started) * 1000.0})


if __name__ == "__main__":
    main()
