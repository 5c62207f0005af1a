#!/usr/bin/env python3
"""DuckDB baseline for `tributary bench-queries`: the same SQL over the same Parquet files.

Reads one JSON document on stdin:
  {"tables": {"<name>": ["/path/part-0.parquet", ...]},   # the files of each Delta table's
                                                          # current version
   "views": ["CREATE VIEW ...", ...],                     # sql/views, as Tributary runs them
   "queries": [{"name": "...", "sql": "..."}],
   "iterations": 20, "warmup": 2}
and prints {"duckdb": "<version>", "threads": N, "results": [{"name", "rows", "ms": [...]}]}.
Needs `pip install duckdb`.
"""
import json
import sys
import time

import duckdb


def main():
    spec = json.load(sys.stdin)
    connection = duckdb.connect()
    for name, files in spec["tables"].items():
        connection.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet({json.dumps(files)})"
        )
    for view in spec["views"]:
        connection.execute(view)
    results = []
    for query in spec["queries"]:
        rows = 0
        for _ in range(spec.get("warmup", 2)):
            rows = len(connection.execute(query["sql"]).fetchall())
        timings = []
        for _ in range(spec["iterations"]):
            started = time.perf_counter()
            connection.execute(query["sql"]).fetchall()
            timings.append((time.perf_counter() - started) * 1000.0)
        results.append({"name": query["name"], "rows": rows, "ms": timings})
    threads = connection.execute("SELECT current_setting('threads')").fetchone()[0]
    json.dump({"duckdb": duckdb.__version__, "threads": threads, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
