"""Many rows into one table at once, in the session's transaction.

On PostgreSQL with psycopg the rows go in with COPY, their ids drawn from the table's sequence
beforehand in one statement (the importer needs them for the rows that point at them); other
databases get one executemany INSERT … RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, Table, any_, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


CHUNK = 5000
"""Values per IN list where the database has no arrays (SQLite)."""


def among(connection: Connection, column: Column, values: Sequence[Any]) -> list[ColumnElement]:
    """Conditions `column IN values`, as few as the database allows: one `= ANY(array)` with
    a single parameter on PostgreSQL (a list of thousands of parameters costs more to send
    and parse than the query takes), chunks of IN lists elsewhere. OR-ing is the caller's:
    each condition is meant for a query of its own."""
    if connection.dialect.name == "postgresql":
        return [column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))]
    return [column.in_(values[i : i + CHUNK]) for i in range(0, len(values), CHUNK)]


def insert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ids: bool | Sequence[int] = True,
) -> list[int]:
    """Insert the rows (values in the order of `columns`); their new ids in order when `ids`.

    `ids` may also be the ids to give the rows, drawn beforehand with `draw_ids`."""
    if not rows:
        return []
    if not isinstance(ids, bool):
        given = list(ids)
        columns = ["id", *columns]
        rows = [(new_id, *row) for new_id, row in zip(given, rows, strict=True)]
        insert_rows(connection, table, columns, rows, ids=False)
        return given
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _copy(connection, table, columns, rows, ids)
    dicts = [dict(zip(columns, row, strict=True)) for row in rows]
    if not ids:
        connection.execute(insert(table), dicts)
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, dicts).scalars())


def _copy(connection, table: Table, columns: Sequence[str], rows, ids: bool) -> list[int]:
    as_json = [n for n, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    new_ids: list[int] = []
    if ids:
        new_ids = draw_ids(connection, table, len(rows))
        columns = ["id", *columns]
        as_json = [n + 1 for n in as_json]
        rows = [(new_id, *row) for new_id, row in zip(new_ids, rows, strict=True)]
    if as_json:
        rows = [_encoded(row, as_json) for row in rows]
    cursor = connection.connection.driver_connection.cursor()
    # table and column names come from the model, never from input
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.close()
    return new_ids


def array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal (`{1,2,NULL}`, `{"a b","c\\"d"}`) of ints, strings or dates.

    Sent as one text parameter and cast by the server (`%s::bigint[]`), a column of thousands
    of values costs Python one join instead of psycopg's dumping value by value: the importer
    builds them while its writer thread waits on the server."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)  # int, date (ISO), Decimal


def draw_ids(connection: Connection, table: Table, n: int) -> list[int]:
    """`n` new ids from the table's own sequence (PostgreSQL), so later single-row inserts
    never collide with rows written with them; fetched as one array, not n rows."""
    if n <= 0:
        return []
    return list(
        connection.execute(
            text(
                "SELECT array(SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                "FROM generate_series(1, :n))"
            ),
            {"table": table.name, "n": n},
        ).scalar_one()
    )


def _encoded(row: Sequence[Any], positions: list[int]) -> list[Any]:
    values = list(row)
    for n in positions:
        if values[n] is not None:
            values[n] = _encode(values[n])
    return values
