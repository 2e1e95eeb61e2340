"""The embedded DB backend: one in-memory SQLite database per episode, speaking as much MySQL as the tasks need.

AgentBench's DB task runs on MySQL, and its INSERT/UPDATE items are judged by a MySQL expression over the final
table. Here the same table hash is computed with MySQL's semantics (see `mysql_table_hash`), string literals are
read the MySQL way (backslash escapes; double quotes delimit strings), common MySQL functions exist, and errors
read like MySQL's ("1054 (42S22): Unknown column ..."), because the trajectories models learn from contain them.

Agent SQL is confined to its own in-memory database: ATTACH is impossible (limit 0 and the authorizer), there
is no extension loading and no file function, PRAGMA is read-only schema inspection, VACUUM (which can write a
file) is refused, and every statement stops after a time limit (progress handler).
"""
from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from typing import Any, Iterable, Sequence

GROUP_CONCAT_MAX_LEN = 1024  # MySQL's default group_concat_max_len, in bytes
MAX_FETCH_ROWS = 10_000

_BACKSLASH = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a",
              "\\": "\\", "%": "\\%", "_": "\\_"}


def _split_literals(sql: str) -> tuple[str, list[str]]:
    """Replaces MySQL string literals ('..' and "..", backslash escapes) by placeholders; returns them decoded."""
    out, lits, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            quote, i, buf = c, i + 1, []
            while i < n:
                ch = sql[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(_BACKSLASH.get(sql[i + 1], sql[i + 1]))
                    i += 2
                elif ch == quote and i + 1 < n and sql[i + 1] == quote:
                    buf.append(quote)
                    i += 2
                elif ch == quote:
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            else:
                raise sqlite3.OperationalError(f'near "{sql[-20:]}": syntax error')
            out.append(f"\x00{len(lits)}\x00")
            lits.append("".join(buf))
        elif c == "`":
            j = sql.find("`", i + 1)
            if j < 0:
                raise sqlite3.OperationalError(f'near "{sql[i:i + 20]}": syntax error')
            out.append(sql[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), lits


_COL = r"(?:`[^`]+`|\b[A-Za-z_][\w$]*)(?:\.(?:`[^`]+`|[A-Za-z_][\w$]*))?"
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])"
_OP = r"<=>|<=|>=|<>|!=|=|<|>"
_COL_OP_NUM = re.compile(rf"(?P<col>{_COL})(?P<op>\s*(?:{_OP})\s*)(?P<num>{_NUM})")
_NUM_OP_COL = re.compile(rf"(?<![\w.`])(?P<num>{_NUM})(?P<op>\s*(?:{_OP})\s*)(?P<col>{_COL})")
_KEYWORDS = {"and", "or", "not", "where", "having", "on", "when", "then", "else", "select", "by", "null", "is",
             "in", "like", "between", "limit", "offset", "from", "set", "case", "end", "as", "distinct", "all"}


def _numeric_compare(code: str) -> str:
    """MySQL compares a string with a number as numbers: `col < 17` becomes `mysql_num(col) < 17`.

    Only outside SET assignments (UPDATE ... SET col = 5 must stay an assignment)."""
    parts = re.split(r"(\bSET\b|\bWHERE\b)", code, flags=re.I)
    out, assigning = [], False
    for part in parts:
        if re.fullmatch(r"SET", part, re.I):
            assigning = True
        elif re.fullmatch(r"WHERE", part, re.I):
            assigning = False
        elif not assigning:
            def fix(m):
                col = m.group("col")
                if col.lower() in _KEYWORDS:
                    return m.group(0)
                if m.re is _COL_OP_NUM:
                    return f"mysql_num({col}){m.group('op')}{m.group('num')}"
                return f"{m.group('num')}{m.group('op')}mysql_num({col})"
            part = _NUM_OP_COL.sub(fix, _COL_OP_NUM.sub(fix, part))
        out.append(part)
    return "".join(out)


# MySQL lets an unquoted identifier start with a digit (`1952_British_Grand_Prix_0`) as long as it is not a number;
# SQLite reads the digits as a number and stops at "unrecognized token". Such words get backquotes.
_DIGIT_WORD = re.compile(r"(`[^`]*`)|(?<![\w$])(\d[\w$]*)")
_NUMBER_WORD = re.compile(r"\d+(?:[eE]\d*)?|0x[0-9a-fA-F]+|0b[01]+")


def _quote_digit_identifiers(code: str) -> str:
    def fix(m):
        word, at = m.group(2), m.start(2)
        if word is None or _NUMBER_WORD.fullmatch(word):
            return m.group(0)  # quoted already, or a number (1e5, 1e-5, 0x1F)
        if at >= 2 and code[at - 1] == "." and code[at - 2].isdigit():
            return m.group(0)  # the fraction of a decimal such as 1.5e3
        return f"`{word}`"
    return _DIGIT_WORD.sub(fix, code)


def mysql_to_sqlite(sql: str) -> str:
    """Reads a statement the way MySQL would and writes it for SQLite.

    String literals ('..' and "..", with backslash escapes) become SQLite '..' literals; a literal where MySQL
    wants a table name, and SQL Server style [brackets], are syntax errors as in MySQL; comparisons of a column
    with a number compare numerically (MySQL converts the string; SQLite would compare text); identifiers that
    start with a digit are quoted."""
    code, lits = _split_literals(sql)
    m = re.search(r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s*(\x00\d+\x00)", code, re.I)
    if m:
        raise sqlite3.OperationalError(f'near "{lits[int(m.group(2).strip(chr(0)))][:40]}": syntax error')
    if "[" in code:
        raise sqlite3.OperationalError(f'near "{code[code.index("["):][:40]}": syntax error')
    code = _numeric_compare(_quote_digit_identifiers(code))
    # LEFT/RIGHT/IF are keywords to SQLite's parser; as calls they are MySQL's string functions
    code = re.sub(r"\b(LEFT|RIGHT|IF)\s*\(", lambda m: f"mysql_{m.group(1).lower()}(", code, flags=re.I)
    return re.sub("\x00(\\d+)\x00", lambda m: "'" + lits[int(m.group(1))].replace("'", "''") + "'", code)


def _mysql_str(v: Any) -> str:
    """How MySQL renders a value in a string context."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, float):
        return repr(v) if not v.is_integer() or abs(v) >= 1e15 else str(int(v))
    return str(v)


def concat_ws(sep: Any, *values: Any) -> str | None:
    """MySQL CONCAT_WS: NULL separator gives NULL; NULL values are skipped (not rendered as empty)."""
    if sep is None:
        return None
    return _mysql_str(sep).join(_mysql_str(v) for v in values if v is not None)


def _md5(v: Any) -> str | None:
    return None if v is None else hashlib.md5(_mysql_str(v).encode("utf-8")).hexdigest()


def mysql_table_hash(rows: Iterable[Sequence[Any]]) -> str | None:
    """md5(group_concat(rowhash ORDER BY rowhash)) with rowhash = left(md5(concat_ws(',', cols...)), 5).

    group_concat joins with ',' and is cut at GROUP_CONCAT_MAX_LEN bytes; over an empty table it is NULL, and so
    is the md5 (None here).
    """
    hashes = sorted(_md5(concat_ws(",", *row))[:5] for row in rows)
    if not hashes:
        return None
    joined = ",".join(hashes).encode("utf-8")[:GROUP_CONCAT_MAX_LEN]
    return hashlib.md5(joined).hexdigest()


def _concat(*values):
    return None if any(v is None for v in values) else "".join(_mysql_str(v) for v in values)


def _if(cond, a, b):
    return a if cond not in (None, 0, "0", "") and cond else b


def _left(s, n):
    return None if s is None or n is None else _mysql_str(s)[: max(int(n), 0)]


def _right(s, n):
    return None if s is None or n is None else (_mysql_str(s)[-int(n):] if int(n) > 0 else "")


def _locate(sub, s, pos=1):
    if sub is None or s is None:
        return None
    return _mysql_str(s).find(_mysql_str(sub), max(int(pos) - 1, 0)) + 1


def _year(s):
    m = re.match(r"\s*(\d{4})", _mysql_str(s)) if s is not None else None
    return int(m.group(1)) if m else None


_NUM_PREFIX = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def mysql_num(v: Any) -> float | int | None:
    """A value in numeric context, as MySQL converts it: the longest numeric prefix of a string, else 0."""
    if v is None or isinstance(v, (int, float)):
        return v
    m = _NUM_PREFIX.match(_mysql_str(v))
    return float(m.group(0)) if m else 0.0


class _MySQLSum:
    """MySQL SUM: over strings the values convert as numbers and the sum is a DOUBLE; NULL when nothing is summed."""

    def __init__(self):
        self.total, self.any, self.as_float = 0, False, False

    def step(self, v):
        if v is None:
            return
        self.any = True
        if not isinstance(v, int):
            self.as_float = True
        self.total += mysql_num(v)

    def finalize(self):
        if not self.any:
            return None
        return float(self.total) if self.as_float else self.total


_FUNCTIONS = {
    ("mysql_num", 1): mysql_num, ("mysql_left", 2): _left, ("mysql_right", 2): _right, ("mysql_if", 3): _if,
    ("md5", 1): _md5, ("concat_ws", -1): concat_ws, ("concat", -1): _concat, ("locate", 2): _locate,
    ("locate", 3): _locate,
    ("lcase", 1): lambda s: None if s is None else _mysql_str(s).lower(),
    ("ucase", 1): lambda s: None if s is None else _mysql_str(s).upper(),
    ("char_length", 1): lambda s: None if s is None else len(_mysql_str(s)),
    ("year", 1): _year,
}

_ALLOWED_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info"}
_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}


def _authorizer(action, arg1, arg2, dbname, source):
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in _ALLOWED_PRAGMAS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def mysql_error(e: Exception, db_name: str = "db") -> str:
    """A SQLite error phrased as the MySQL client would report the same mistake."""
    msg = str(e)
    m = re.match(r"no such column: (.+)", msg)
    if m:
        return f"1054 (42S22): Unknown column '{m.group(1)}' in 'field list'"
    m = re.match(r"no such table: (.+)", msg)
    if m:
        return f"1146 (42S02): Table '{db_name}.{m.group(1)}' doesn't exist"
    m = re.match(r'near "(.*)": syntax error', msg, re.S)
    if m:
        return ("1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your "
                f"MySQL server version for the right syntax to use near '{m.group(1)}' at line 1")
    if "interrupted" in msg:
        return "3024 (HY000): Query execution was interrupted, maximum statement execution time exceeded"
    if "not authorized" in msg or "prohibited" in msg:
        return f"1142 (42000): command denied: {msg}"
    return f"1105 (HY000): {msg}"


class SQLiteDB:
    """One episode's database: the item's table, all columns TEXT as AgentBench builds it."""

    def __init__(self, table_name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 statement_timeout: float = 5.0):
        self.table_name, self.columns = table_name, list(columns)
        self.timeout = statement_timeout
        self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        # MySQL's default collation compares case-insensitively; NOCASE is SQLite's nearest.
        cols = ", ".join(f"{_ident(c)} TEXT COLLATE NOCASE" for c in self.columns)
        self.conn.execute(f"CREATE TABLE {_ident(table_name)} ({cols})")
        marks = ", ".join("?" for _ in self.columns)
        for n, row in enumerate(rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {table_name!r} row {n} has {len(row)} values for {len(self.columns)} columns")
        self.conn.executemany(f"INSERT INTO {_ident(table_name)} VALUES ({marks})",
                              [[None if v is None else _mysql_str(v) for v in row] for row in rows])
        for (name, narg), fn in _FUNCTIONS.items():
            self.conn.create_function(name, narg, fn, deterministic=True)
        self.conn.create_aggregate("sum", 1, _MySQLSum)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10_000_000)
        self.conn.set_authorizer(_authorizer)
        self._deadline = 0.0
        self.conn.set_progress_handler(lambda: 1 if time.monotonic() > self._deadline else 0, 10_000)

    def query(self, sql: str) -> list[tuple]:
        """Runs one statement; raises sqlite3.Error (with MySQL-style text via `mysql_error`)."""
        text = mysql_to_sqlite(sql.strip())
        if re.match(r"\s*vacuum\b", text, re.I):
            raise sqlite3.DatabaseError("not authorized")
        self._deadline = time.monotonic() + self.timeout
        cur = self.conn.execute(text)
        rows = cur.fetchmany(MAX_FETCH_ROWS) if cur.description else []
        cur.close()
        return [tuple(r) for r in rows]

    def execute(self, sql: str) -> str:
        """The observation the agent sees: the raw row list, or the error."""
        try:
            return str(self.query(sql))
        except (sqlite3.Error, ValueError, OverflowError) as e:
            return mysql_error(e, self.table_name)

    def table_hash(self) -> str | None:
        cols = ", ".join(_ident(c) for c in self.columns)
        self._deadline = time.monotonic() + 60
        self.conn.set_authorizer(None)
        try:
            rows = self.conn.execute(f"SELECT {cols} FROM {_ident(self.table_name)}").fetchall()
        except sqlite3.Error:
            return None  # the agent dropped or altered the table
        finally:
            self.conn.set_authorizer(_authorizer)
        return mysql_table_hash(rows)

    def close(self) -> None:
        self.conn.close()


def _ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"
