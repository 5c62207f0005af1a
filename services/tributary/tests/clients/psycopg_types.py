"""Queries the Tributary SQL endpoint with psycopg 3 and prints what arrived, as JSON.

Usage: psycopg_types.py postgres://user:password@host:port/db
Each value is printed as [python type name, str(value), tz name for datetimes], so the Rust
test can assert the types and exact values without trusting this script.
"""
import json
import sys
from decimal import Decimal

import psycopg


def described(value):
    kind = type(value).__name__
    if kind == "datetime":
        return [kind, value.isoformat(), str(value.tzinfo)]
    return [kind, str(value)]


def main(url):
    answer = {}
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor() as cursor:
            # Server-side binding: the parameter travels separately from the SQL text.
            cursor.execute(
                "SELECT account, line_no, posting_date, debit, recorded_at, event_position"
                " FROM gl_journal_lines WHERE account = %s ORDER BY line_no",
                ("1200",),
            )
            names = [column.name for column in cursor.description]
            answer["column_types"] = [
                connection.adapters.types.get(column.type_code).name
                for column in cursor.description
            ]
            answer["rows"] = [
                {name: described(value) for name, value in zip(names, row)}
                for row in cursor.fetchall()
            ]
            cursor.execute(
                "SELECT sum(debit) FROM gl_journal_lines WHERE debit = %s",
                (Decimal("1234.5678"),),
            )
            answer["sum_by_decimal_parameter"] = str(cursor.fetchone()[0])
            try:
                cursor.execute("DROP TABLE gl_journal_lines")
                answer["read_only_sqlstate"] = None
            except psycopg.Error as error:
                answer["read_only_sqlstate"] = error.sqlstate
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
