"""The commands a user reads in README.md and docs/operations.md, extracted as the docs-check runs them.

What counts as a command:

- every line of a fenced block tagged ``bash``, ``sh``, ``shell`` or ``console`` (a trailing ``\\`` joins the next
  line; comment lines and a `` # comment`` after a command are dropped; a ``$ `` prompt is removed);
- every statement of a fenced block tagged ``sql`` (split on ``;``, ``--`` comments dropped);
- every inline code span outside fenced blocks whose first word is a shell command a reader would type
  (``make``, ``airflow``, ``.venv/bin/...``, ``python``/``python3``, ``psql``, ``set``, ``docker``, ``curl``, ``uv``,
  ``pip``) or which starts with ``SELECT``/``WITH``.

Blocks without a tag or with another tag (program output, YAML, JSON) are not commands.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELL_TAGS = {"bash", "sh", "shell", "console"}
SQL_TAGS = {"sql"}
INLINE_SHELL_WORDS = {"make", "airflow", "python", "python3", "psql", "set", "docker", "curl", "uv", "pip"}
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass
class Command:
    """One command as written in a doc; ``block`` groups the commands of one fenced block (None when inline)."""

    kind: str  # "shell" or "sql"
    text: str
    source: str  # "README.md:42"
    block: str | None = None


@dataclass
class Block:
    kind: str
    source: str
    commands: list[Command] = field(default_factory=list)


def _strip_shell_comment(line: str) -> str:
    """``line`` without a ``#`` comment that starts outside quotes (at the start or after whitespace)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _shell_commands(lines: list[tuple[int, str]], name: str, block: str) -> list[Command]:
    out, pending, start = [], "", None
    for number, raw in lines:
        line = raw.rstrip()
        if not pending and line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("$ "):
            line = line.lstrip()[2:]
        if start is None:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        text = _strip_shell_comment(pending + line.strip()).strip()
        pending = ""
        if text:
            out.append(Command("shell", text, f"{name}:{start}", block))
        start = None
    return out


def _sql_commands(lines: list[tuple[int, str]], name: str, block: str) -> list[Command]:
    out, statement, start = [], [], None
    for number, raw in lines:
        line = re.sub(r"--.*$", "", raw).rstrip()
        if not line.strip():
            continue
        start = number if start is None else start
        statement.append(line.strip())
        if line.endswith(";"):
            out.append(Command("sql", " ".join(statement), f"{name}:{start}", block))
            statement, start = [], None
    if statement:
        out.append(Command("sql", " ".join(statement), f"{name}:{start}", block))
    return out


def _is_inline_command(span: str) -> bool:
    words = span.split()
    if not words:
        return False
    first = words[0]
    if first.upper() in ("SELECT", "WITH") and len(words) > 1:
        return True
    if first.startswith(".venv/bin/"):
        return True
    return first in INLINE_SHELL_WORDS and len(words) > 1


def extract(path: Path, name: str) -> tuple[list[Block], list[Command]]:
    """(fenced blocks with their commands, inline commands) of one Markdown file."""
    blocks: list[Block] = []
    inline: list[Command] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            marker, tag = fence.group(2), fence.group(3).lower()
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                body.append((j + 1, lines[j]))
                j += 1
            source = f"{name}:{i + 1}"
            if tag in SHELL_TAGS:
                blocks.append(Block("shell", source, _shell_commands(body, name, source)))
            elif tag in SQL_TAGS:
                blocks.append(Block("sql", source, _sql_commands(body, name, source)))
            i = j + 1
            continue
        for span in _INLINE.findall(lines[i]):
            if _is_inline_command(span.strip()):
                kind = "sql" if span.split()[0].upper() in ("SELECT", "WITH") else "shell"
                inline.append(Command(kind, span.strip(), f"{name}:{i + 1}"))
        i += 1
    return blocks, inline
