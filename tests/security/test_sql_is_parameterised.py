"""Every SQL statement in the package is parameterised: no value is ever formatted into SQL text (issue 5 §4).

The scan finds every ``execute(``, ``executemany(`` and ``copy(`` call under ``plugins/`` and ``dags/`` and checks
the statement (the first argument). Accepted:

* a string literal;
* ``self.q(<statement>)`` / ``sql.SQL(<statement>)`` (optionally ``.format(...)``): psycopg's composition, where
  ``{s}`` becomes ``sql.Identifier(schema)``;
* an f-string whose every interpolation is a local name bound *only* to string literals in the same function
  (fixed internal column names such as ``here``/``there``/``column`` in ``link_store.py``);
* a local name bound in the same function to an accepted statement, and the names in :data:`ALLOWED_NAMES`.

Refused: ``%`` or ``+`` on SQL text, ``str.format``, and f-strings interpolating anything else (a value).
Values go in the second argument, as parameters.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL_CALLS = {"execute", "executemany", "copy"}
COMPOSERS = {"q", "SQL"}  # LinkStore.q and psycopg.sql.SQL
#: Names that hold fixed SQL text from the package itself. ``ddl``: a migration of engine/schema.py's MIGRATIONS
#: (constant DDL, composed through ``self.q`` so the schema goes in as an identifier).
ALLOWED_NAMES = {"ddl"}


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _constant_text(node: ast.AST) -> bool:
    """Only string literals (also in tuples and conditional expressions)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple):
        return all(_constant_text(e) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return _constant_text(node.body) and _constant_text(node.orelse)
    return False


def _bindings(function: ast.AST, name: str) -> list[ast.AST] | None:
    """The values assigned to ``name`` in ``function`` (tuple targets matched by position); None if bound otherwise."""
    values: list[ast.AST] = []
    for node in ast.walk(function):
        if isinstance(node, (ast.For, ast.comprehension, ast.With, ast.withitem)):
            target = getattr(node, "target", None) or getattr(node, "optional_vars", None)
            if target is not None and any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                return None
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple):
                for index, element in enumerate(target.elts):
                    if isinstance(element, ast.Name) and element.id == name:
                        if isinstance(node.value, ast.Tuple):
                            values.append(node.value.elts[index])
                        elif isinstance(node.value, ast.IfExp) and all(
                            isinstance(v, ast.Tuple) for v in (node.value.body, node.value.orelse)
                        ):
                            values += [node.value.body.elts[index], node.value.orelse.elts[index]]
                        else:
                            return None
    return values


def problems_in(statement: ast.AST, function: ast.AST | None) -> list[str]:
    """Why ``statement`` (the SQL argument) may interpolate a value; empty when it is safe."""
    if isinstance(statement, ast.Constant) and isinstance(statement.value, str):
        return []
    if isinstance(statement, ast.JoinedStr):
        out = []
        for part in statement.values:
            if not isinstance(part, ast.FormattedValue):
                continue
            value = part.value
            bound = _bindings(function, value.id) if isinstance(value, ast.Name) and function is not None else None
            if not bound or not all(_constant_text(v) for v in bound):
                out.append(f"f-string interpolates {ast.unparse(value)!r}, which is not a fixed string")
        return out
    if isinstance(statement, ast.Call) and isinstance(statement.func, ast.Attribute):
        func = statement.func
        if func.attr == "format" and isinstance(func.value, ast.Call) and _composer(func.value):
            return problems_in(func.value, function)  # sql.SQL(...).format(Identifier(...)): psycopg composes safely
        if func.attr == "format":
            return [f"str.format builds SQL text: {ast.unparse(statement)[:80]}"]
    if isinstance(statement, ast.Call) and _composer(statement):
        if not statement.args:
            return ["composer without a statement"]
        return problems_in(statement.args[0], function)
    if isinstance(statement, ast.Name):
        if statement.id in ALLOWED_NAMES:
            return []
        bound = _bindings(function, statement.id) if function is not None else None
        if not bound:
            return [f"statement {statement.id!r} is not bound to SQL text in the same function"]
        return [p for v in bound for p in problems_in(v, function)]
    if isinstance(statement, ast.BinOp):
        return [f"SQL text built with {type(statement.op).__name__}: {ast.unparse(statement)[:80]}"]
    return [f"cannot tell what this statement is: {ast.unparse(statement)[:80]}"]


def _composer(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr in COMPOSERS) or (
        isinstance(func, ast.Name) and func.id in COMPOSERS
    )


def scan(source: str, filename: str = "<source>") -> list[str]:
    """Every questionable SQL call in ``source``, as ``file:line: reason``."""
    tree = ast.parse(source, filename)
    owner: dict[ast.AST, ast.AST] = {}
    for function in _functions(tree):  # outer functions come first: an inner one overwrites with itself
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                owner[node] = function
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
            and node.args
        ):
            for reason in problems_in(node.args[0], owner.get(node)):
                found.append(f"{filename}:{node.lineno}: {reason}")
    return found


def _package_files() -> list[Path]:
    return sorted(
        p for folder in ("plugins", "dags") for p in (ROOT / folder).rglob("*.py") if ".egg-info" not in str(p)
    )


def test_the_package_has_sql_calls_to_check():
    calls = sum(scan_count(p.read_text()) for p in _package_files())
    assert calls >= 30  # the scan sees the link store's statements (it is not silently looking at nothing)


def scan_count(source: str) -> int:
    return sum(
        1
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS and n.args
    )


def test_no_sql_statement_in_the_package_interpolates_a_value():
    found = [p for path in _package_files() for p in scan(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


GOOD = """
def f(self, cur, flow, system, ids):
    here, there = ("a_id", "b_id") if system == "a" else ("b_id", "a_id")
    column = "a_id"
    query = self.q("SELECT 1 FROM {s}.t WHERE x = %(x)s")
    cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (flow,))
    cur.execute(self.q(f"SELECT {here}, {there} FROM {{s}}.links WHERE {column} = ANY(%s)"), (ids,))
    cur.execute(query, {"x": 1})
    cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(flow)))
    with cur.copy(self.q("COPY {s}.staging FROM STDIN")) as copy:
        pass
"""
BAD = {
    "f-string with a value": "def f(cur, flow):\n    cur.execute(f\"SELECT 1 WHERE flow = '{flow}'\")\n",
    "f-string inside q": 'def f(self, cur, flow):\n    cur.execute(self.q(f"DELETE FROM {{s}}.t WHERE f = {flow}"))\n',
    "percent formatting": "def f(cur, flow):\n    cur.execute(\"SELECT 1 WHERE flow = '%s'\" % flow)\n",
    "concatenation": 'def f(cur, flow):\n    cur.executemany("SELECT 1 WHERE flow = " + flow, [])\n',
    "str.format": 'def f(cur, flow):\n    cur.execute("SELECT 1 WHERE flow = {}".format(flow))\n',
    "a name bound to a value": 'def f(cur, flow):\n    column = flow\n    cur.execute(f"SELECT {column} FROM t")\n',
    "a statement built elsewhere": "def f(cur, query):\n    cur.execute(query)\n",
    "a copy with a value": 'def f(cur, table):\n    cur.copy(f"COPY {table} FROM STDIN")\n',
}


def test_the_scan_accepts_parameterised_statements_and_fixed_identifiers():
    assert scan(GOOD) == []


@pytest.mark.parametrize("source", BAD.values(), ids=BAD.keys())
def test_the_scan_refuses_statements_built_from_values(source):
    assert scan(source) != []
