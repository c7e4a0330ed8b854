"""No UPDATE or DELETE without a WHERE clause in any function of the migrated schema.

On hosted Supabase, PostgREST's login role loads pg-safeupdate. It refuses every UPDATE and
DELETE that has no WHERE clause (`21000: DELETE requires a WHERE clause`), in every statement of
the session: inside functions, and inside CTEs. A function that does one works over a direct
connection and fails over REST (`DB_TRANSPORT=rest`), as `fold_analytics()` did.
pg-safeupdate cannot be installed here, so this test applies its rule statically: every function
of the migrated schemas (`public` and `docflow_private`, read from `pg_proc`) is parsed with
PostgreSQL's own parser (pglast, libpg_query):

- SQL functions: the body (`prosrc`), or the whole definition for a `begin atomic` body;
- PL/pgSQL functions: the definition through the PL/pgSQL parser, then the SQL text of every
  statement and expression it holds (`PLpgSQL_expr`: plain statements, loops, cursors, RETURN
  QUERY, conditions, assignments) through the SQL parser in turn;
- dynamic SQL (EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE): a
  string literal is parsed like any statement; anything built at run time (format(), ||)
  cannot be, and such a function must be listed in DYNAMIC_SQL with a reason.

A regex would miss `with d as (delete from t returning *) ...`, which is exactly what broke.
The fold's concurrency after its fix is tested here too (the report figures are in
test_analytics.py).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast
from pglast.visitors import Visitor

SCHEMAS = ("public", "docflow_private")

# Functions whose dynamic SQL cannot be parsed, with the reason each is safe under
# pg-safeupdate. Empty today: no function of ours builds SQL at run time.
DYNAMIC_SQL: dict[str, str] = {}

# PL/pgSQL expression parse modes (PostgreSQL's RawParseMode).
RAW_PARSE_DEFAULT = 0
RAW_PARSE_TYPE_NAME = 1
RAW_PARSE_PLPGSQL_EXPR = 2
RAW_PARSE_PLPGSQL_ASSIGN = (3, 4, 5)
# PL/pgSQL statements whose query is a string computed at run time, and the key holding it.
DYNAMIC_STATEMENTS = {
    "PLpgSQL_stmt_dynexecute": "query",
    "PLpgSQL_stmt_dynfors": "query",
    "PLpgSQL_stmt_open": "dynquery",
    "PLpgSQL_stmt_return_query": "dynquery",
}
_ASSIGNMENT = re.compile(r'^\s*(?:"[^"]*"|[^:="])+?\s*:?=\s*(?P<expr>.*)$', re.DOTALL)


# --- the detector ----------------------------------------------------------------------------


class _UnqualifiedDml(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def visit_UpdateStmt(self, ancestors: Any, node: ast.UpdateStmt) -> None:
        if node.whereClause is None:
            self.found.append(f"UPDATE {node.relation.relname} without WHERE")

    def visit_DeleteStmt(self, ancestors: Any, node: ast.DeleteStmt) -> None:
        if node.whereClause is None:
            self.found.append(f"DELETE FROM {node.relation.relname} without WHERE")


def unqualified_dml(sql_text: str) -> list[str]:
    """Every UPDATE or DELETE without a WHERE clause in `sql_text`, at any depth (CTEs,
    subqueries, several statements). Raises pglast's ParseError on text that does not parse."""
    finder = _UnqualifiedDml()
    finder(pglast.parse_sql(sql_text))
    return finder.found


@dataclass(frozen=True)
class PlpgsqlSql:
    statements: list[str]  # SQL texts to check (statements, and expressions as SELECTs)
    dynamic: list[str]  # run-time built query expressions that cannot be parsed


def _string_literal(expression: str) -> str | None:
    """The value of `expression` if it is one string literal, else None."""
    (raw,) = pglast.parse_sql(f"select {expression}")
    stmt = raw.stmt
    if (
        isinstance(stmt, ast.SelectStmt)
        and stmt.targetList is not None
        and len(stmt.targetList) == 1
        and isinstance(stmt.targetList[0].val, ast.A_Const)
        and isinstance(stmt.targetList[0].val.val, ast.String)
    ):
        return str(stmt.targetList[0].val.val.sval)
    return None


def plpgsql_sql(function_definition: str) -> PlpgsqlSql:
    """The SQL held by a PL/pgSQL function (a whole CREATE FUNCTION statement)."""
    statements: list[str] = []
    dynamic: list[str] = []

    def expression(expr: dict[str, Any], is_dynamic: bool) -> None:
        query = expr.get("query", "")
        mode = expr.get("parseMode", RAW_PARSE_DEFAULT)
        if is_dynamic:
            literal = _string_literal(query)
            if literal is None:
                dynamic.append(query)
            else:
                statements.append(literal)
        elif mode == RAW_PARSE_DEFAULT:
            statements.append(query)
        elif mode == RAW_PARSE_PLPGSQL_EXPR:
            statements.append(f"select {query}")
        elif mode in RAW_PARSE_PLPGSQL_ASSIGN:
            match = _ASSIGNMENT.match(query)
            assert match is not None, f"unexpected assignment: {query!r}"
            statements.append(f"select {match['expr']}")
        elif mode != RAW_PARSE_TYPE_NAME:
            raise AssertionError(f"unknown PL/pgSQL parse mode {mode}: {query!r}")

    def walk(node: Any, is_dynamic: bool = False) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, is_dynamic)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "PLpgSQL_expr":
                    expression(value, is_dynamic)
                elif key in DYNAMIC_STATEMENTS:
                    for child_key, child in value.items():
                        walk(child, child_key == DYNAMIC_STATEMENTS[key])
                else:
                    walk(value, is_dynamic)

    walk(pglast.parse_plpgsql(function_definition))
    return PlpgsqlSql(statements, dynamic)


@dataclass(frozen=True)
class Function:
    signature: str
    language: str
    source: str
    definition: str
    atomic: bool


def migrated_functions(conn: psycopg.Connection) -> list[Function]:
    """Every function of our schemas, extension members aside."""
    rows = conn.execute(
        "select format('%%s.%%s(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)),"
        "       l.lanname, p.prosrc, pg_get_functiondef(p.oid), p.prosqlbody is not null"
        "  from pg_proc p"
        "  join pg_namespace n on n.oid = p.pronamespace"
        "  join pg_language l on l.oid = p.prolang"
        " where n.nspname = any(%s) and p.prokind in ('f', 'p')"
        "   and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass"
        "                   and d.objid = p.oid and d.deptype = 'e')"
        " order by 1",
        (list(SCHEMAS),),
    ).fetchall()
    return [Function(*row) for row in rows]


@dataclass
class Findings:
    unqualified: dict[str, list[str]]
    dynamic: dict[str, list[str]]
    unparsed: dict[str, str]


def check_functions(functions: list[Function]) -> Findings:
    findings = Findings({}, {}, {})
    for fn in functions:
        try:
            if fn.language == "sql":
                found = unqualified_dml(fn.definition if fn.atomic else fn.source)
            elif fn.language == "plpgsql":
                held = plpgsql_sql(fn.definition)
                found = [hit for text in held.statements for hit in unqualified_dml(text)]
                if held.dynamic:
                    findings.dynamic[fn.signature] = held.dynamic
            else:
                findings.unparsed[fn.signature] = f"language {fn.language} is not checked"
                continue
        except pglast.parser.ParseError as exc:
            findings.unparsed[fn.signature] = str(exc)
            continue
        if found:
            findings.unqualified[fn.signature] = found
    return findings


# --- the detector checks itself ------------------------------------------------------------


def test_detector_flags_a_delete_in_a_cte_and_a_bare_update():
    assert unqualified_dml("with d as (delete from t returning *) select count(*) from d") == [
        "DELETE FROM t without WHERE"
    ]
    assert unqualified_dml("update t set a = 1") == ["UPDATE t without WHERE"]
    assert unqualified_dml("select 1; delete from s.t; update u set a = 1 from v") == [
        "DELETE FROM t without WHERE",
        "UPDATE u without WHERE",
    ]
    # Nested deeper: a CTE of a CTE, an insert fed by a delete.
    assert unqualified_dml(
        "with a as (with b as (update t set a = 2 returning a) select * from b)"
        " insert into x select * from a"
    ) == ["UPDATE t without WHERE"]


def test_detector_passes_qualified_statements():
    assert unqualified_dml("delete from t where id <= (select max(id) from t)") == []
    assert unqualified_dml("with d as (delete from t where a = 1 returning *) table d") == []
    assert unqualified_dml("update t set a = 1 from u where u.id = t.id") == []
    assert unqualified_dml("delete from t where current of c") == []
    assert unqualified_dml("select * from t; insert into t values (1)") == []


PLPGSQL_SAMPLE = """
create function f(n int) returns int language plpgsql as $$
declare
  x int := 1;
  r record;
  c refcursor;
begin
  x := (select count(*) from t);
  with d as (delete from t1 returning *) select count(*) into x from d;
  if x > 0 then update t2 set a = 1 where a = 2; end if;
  for r in with d as (update t3 set a = 1 returning *) select * from d loop null; end loop;
  open c for with d as (delete from t4 returning *) select * from d;
  perform g(1);
  execute 'update t5 set a = 2';
  execute 'delete from t6 where a = $1' using n;
  execute format('delete from %I', 't7');
  return x;
end $$"""


def test_plpgsql_statements_are_found_wherever_they_are():
    held = plpgsql_sql(PLPGSQL_SAMPLE)
    found = [hit for text in held.statements for hit in unqualified_dml(text)]
    assert found == [
        "DELETE FROM t1 without WHERE",
        "UPDATE t3 without WHERE",
        "DELETE FROM t4 without WHERE",
        "UPDATE t5 without WHERE",
    ]
    assert held.dynamic == ["format('delete from %I', 't7')"]


def test_check_functions_reports_each_kind_of_finding():
    functions = [
        Function("s.sql_bad()", "sql", "delete from t", "", False),
        Function("s.sql_ok()", "sql", "delete from t where a = 1", "", False),
        Function("s.plpgsql_mixed(integer)", "plpgsql", "", PLPGSQL_SAMPLE, False),
        Function("s.broken()", "sql", "delete frm t", "", False),
        Function("s.c_fn()", "c", "c_fn", "", False),
    ]
    findings = check_functions(functions)
    assert findings.unqualified == {
        "s.sql_bad()": ["DELETE FROM t without WHERE"],
        "s.plpgsql_mixed(integer)": [
            "DELETE FROM t1 without WHERE",
            "UPDATE t3 without WHERE",
            "DELETE FROM t4 without WHERE",
            "UPDATE t5 without WHERE",
        ],
    }
    assert findings.dynamic == {"s.plpgsql_mixed(integer)": ["format('delete from %I', 't7')"]}
    assert set(findings.unparsed) == {"s.broken()", "s.c_fn()"}


def test_the_detector_finds_the_old_fold_in_a_real_catalog(sql):
    """The original fold_analytics body (20261123220000_analytics.sql), loaded into a scratch
    schema, read back from pg_proc and checked like every migrated function."""
    with sql.transaction(force_rollback=True):
        sql.execute("create schema scratch_safeupdate")
        sql.execute("create table scratch_safeupdate.pending (id bigint, v integer)")
        sql.execute(
            "create function scratch_safeupdate.old_fold() returns integer language plpgsql"
            " as $$ declare v integer; begin"
            "   with facts as (delete from scratch_safeupdate.pending returning *)"
            "   select count(*) into v from facts;"
            "   return v;"
            " end $$"
        )
        rows = sql.execute(
            "select format('%s.%s()', n.nspname, p.proname), l.lanname, p.prosrc,"
            "       pg_get_functiondef(p.oid), p.prosqlbody is not null"
            "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            "  join pg_language l on l.oid = p.prolang"
            " where n.nspname = 'scratch_safeupdate'"
        ).fetchall()
        findings = check_functions([Function(*row) for row in rows])
    assert findings.unqualified == {
        "scratch_safeupdate.old_fold()": ["DELETE FROM pending without WHERE"]
    }


# --- the migrated schema ----------------------------------------------------------------------


def test_no_function_updates_or_deletes_without_where(sql):
    functions = migrated_functions(sql)
    names = {fn.signature.split("(")[0] for fn in functions}
    # The check sees the functions that matter (and would see any new one).
    assert {
        "public.fold_analytics",
        "public.heartbeat_jobs",
        "public.retention_delete",
        "docflow_private.claim_rows",
        "docflow_private.record_analytics_facts",
    } <= names
    findings = check_functions(functions)
    assert findings.unqualified == {}, "pg-safeupdate refuses these over REST"
    assert findings.unparsed == {}, "every function body must parse"
    assert set(findings.dynamic) == set(DYNAMIC_SQL), (
        "dynamic SQL cannot be checked: list the function in DYNAMIC_SQL with a reason,"
        " or drop a stale entry"
    )


# --- the fold after its fix: same results, same concurrency ---------------------------------


def _insert_event(conn: psycopg.Connection) -> None:
    conn.execute("insert into public.document_processing_events (event_type) values ('failed')")


def _fold_as_service(conn: psycopg.Connection) -> int:
    """`select public.fold_analytics()` as PostgREST runs it for the service role (the role is
    local to the transaction: the caller's own one when it has one open)."""
    with conn.transaction():
        conn.execute("select set_config('role', 'service_role', true)")
        row = conn.execute("select public.fold_analytics()").fetchone()
    assert row is not None
    return int(row[0])


def _pending(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from public.analytics_pending").fetchone()
    assert row is not None
    return int(row[0])


def _rolled_up(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select coalesce(sum(events), 0) from public.analytics_rollups where grain = 300"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def second_conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def test_fold_leaves_the_facts_of_an_open_transaction_even_below_the_highest_id(sql, second_conn):
    """The open transaction's fact takes the lower id; a later one commits first. The fold
    takes only what it can see, and the next fold takes the rest: nothing lost, nothing
    twice."""
    with second_conn.transaction():
        _insert_event(second_conn)  # lower pending id, not committed yet
        _insert_event(sql)  # higher id, committed
        assert _fold_as_service(sql) == 1
        assert _rolled_up(sql) == 1
    assert _pending(sql) == 1
    assert _fold_as_service(sql) == 1
    assert (_pending(sql), _rolled_up(sql)) == (0, 2)
    assert _fold_as_service(sql) == 0


def _wait_until_blocked(conn: psycopg.Connection, pid: int) -> None:
    """Wait until backend `pid` waits on a lock (polls the condition; bounded, no assertion on
    time)."""
    for _ in range(6000):
        row = conn.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError("the second fold never waited on the first")


def test_concurrent_folds_fold_each_fact_once(sql, second_conn, database_url):
    for _ in range(3):
        _insert_event(sql)
    result: dict[str, Any] = {}

    with psycopg.connect(database_url, autocommit=True) as third:
        pid = third.info.backend_pid

        def second_fold() -> None:
            try:
                result["folded"] = _fold_as_service(third)
            except BaseException as exc:
                result["error"] = exc

        with second_conn.transaction():
            assert _fold_as_service(second_conn) == 3  # holds the rows' locks until commit
            thread = threading.Thread(target=second_fold)
            thread.start()
            _wait_until_blocked(sql, pid)
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert "error" not in result
    assert result["folded"] == 0
    assert (_pending(sql), _rolled_up(sql)) == (0, 3)
