"""What one SQL statement is, read from its tokens: kind, FORMAT, SETTINGS, calls.

Pure: no engine, no I/O. ``analyze`` refuses what ClickHouse itself would refuse before
parsing (an empty query, several statements, a token its lexer rejects), so the policy
only ever judges one well-tokenized statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError
from otelspend.api.sqlhttp.lexer import Kind, Token, tokenize


@dataclass(frozen=True)
class Statement:
    """One SQL statement as the policy reads it: its verb, significant tokens, FORMAT and SETTINGS."""

    kind: str
    """First keyword, upper-cased: SELECT, WITH, SHOW, SET, INSERT, ... ("" if none)."""
    tokens: tuple[Token, ...]
    """Significant tokens (no whitespace, no comments, no trailing semicolon)."""
    format: str | None
    """The FORMAT clause's format, if any."""
    settings: tuple[tuple[str, str], ...]
    """``SETTINGS name = value`` pairs anywhere in the statement, or a SET statement's pairs."""
    calls: tuple[str, ...]
    """Names used as functions or table functions (``name(``), as written."""
    into_outfile: bool


def analyze(sql: str) -> Statement:
    """One statement of ``sql``; raises ClickHouseError(SYNTAX_ERROR) for what cannot be one."""
    tokens = [t for t in tokenize(sql) if t.significant]
    first = next((t for t in tokens if t.kind is Kind.WORD), None)
    if first is not None and first.is_word("INSERT"):
        # An INSERT's data follows its FORMAT / VALUES in the same body (clients send binary
        # Native there): it is refused for what it is, never lexed as SQL.
        return Statement("INSERT", tuple(tokens[:1]), None, (), (), False)
    for token in tokens:
        if token.kind is Kind.ERROR:
            raise ClickHouseError.of(
                errors.SYNTAX_ERROR, f"Syntax error at position {token.start}: unrecognized token {token.text[:20]!r}"
            )
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    if not tokens:
        raise ClickHouseError.of(errors.SYNTAX_ERROR, "Empty query")
    if any(t.text == ";" for t in tokens):
        raise ClickHouseError.of(errors.SYNTAX_ERROR, "Multi-statements are not allowed")
    kind = next((t.text.upper() for t in tokens if t.kind is Kind.WORD), "")
    settings = _set_pairs(tokens) if kind == "SET" else _settings_clauses(tokens)
    return Statement(
        kind=kind,
        tokens=tuple(tokens),
        format=_format_clause(tokens),
        settings=tuple(settings),
        calls=tuple(_calls(tokens)),
        into_outfile=any(a.is_word("INTO") and b.is_word("OUTFILE") for a, b in pairwise(tokens)),
    )


def identifier(token: Token) -> str:
    """A bare or quoted identifier's name (quotes removed, escapes decoded)."""
    if token.kind is Kind.QUOTED_IDENTIFIER:
        return _unescape(token.text[1:-1], token.text[0])
    return token.text


def literal(tokens: list[Token] | tuple[Token, ...], index: int) -> tuple[str, int] | None:
    """A setting value at ``index``: number (optionally signed), string or word; and the next index."""
    if index >= len(tokens):
        return None
    token = tokens[index]
    if token.text in ("-", "+") and index + 1 < len(tokens) and tokens[index + 1].kind is Kind.NUMBER:
        sign = "-" if token.text == "-" else ""
        return sign + tokens[index + 1].text, index + 2
    if token.kind is Kind.NUMBER or token.kind is Kind.WORD:
        return token.text, index + 1
    if token.kind is Kind.STRING and token.text.startswith("'"):
        return _unescape(token.text[1:-1], "'"), index + 1
    return None


def _name_value_list(tokens: list[Token], index: int, what: str) -> tuple[list[tuple[str, str]], int]:
    pairs: list[tuple[str, str]] = []
    while True:
        if index >= len(tokens) or tokens[index].kind not in (Kind.WORD, Kind.QUOTED_IDENTIFIER):
            raise ClickHouseError.of(
                errors.SYNTAX_ERROR, f"{what}: expected a setting name at position {_at(tokens, index)}"
            )
        name = identifier(tokens[index])
        if index + 1 >= len(tokens) or tokens[index + 1].text != "=":
            # ``SET flag`` / ``SETTINGS flag`` without a value means 1 in ClickHouse.
            pairs.append((name, "1"))
            index += 1
        else:
            value = literal(tokens, index + 2)
            if value is None:
                raise ClickHouseError.of(
                    errors.SYNTAX_ERROR,
                    f"{what}: {name} must be set to a literal (number, 'string', true/false) at position "
                    f"{_at(tokens, index + 2)}",
                )
            pairs.append((name, value[0]))
            index = value[1]
        if index < len(tokens) and tokens[index].text == ",":
            index += 1
            continue
        return pairs, index


def _set_pairs(tokens: list[Token]) -> list[tuple[str, str]]:
    start = next(i for i, t in enumerate(tokens) if t.kind is Kind.WORD) + 1
    if start < len(tokens) and tokens[start].is_word("ROLE", "DEFAULT", "TRANSACTION"):
        return []  # SET ROLE / SET DEFAULT ROLE / SET TRANSACTION: not settings; the policy refuses them
    pairs, index = _name_value_list(tokens, start, "SET")
    if index != len(tokens):
        raise ClickHouseError.of(
            errors.SYNTAX_ERROR, f"SET: unexpected {tokens[index].text!r} at position {tokens[index].start}"
        )
    return pairs


def _settings_clauses(tokens: list[Token]) -> list[tuple[str, str]]:
    """Every ``SETTINGS name = ...`` clause. A SETTINGS word not followed by ``name =`` is
    not a clause (a column named settings, ``SHOW SETTINGS``)."""
    pairs: list[tuple[str, str]] = []
    for index, token in enumerate(tokens):
        if not token.is_word("SETTINGS") or (index > 0 and tokens[index - 1].text == "."):
            continue
        nxt = tokens[index + 1 : index + 3]
        if len(nxt) == 2 and nxt[0].kind in (Kind.WORD, Kind.QUOTED_IDENTIFIER) and nxt[1].text == "=":
            found, _ = _name_value_list(tokens, index + 1, "SETTINGS")
            pairs.extend(found)
    return pairs


def _format_clause(tokens: list[Token]) -> str | None:
    depth = 0
    found = None
    for index, token in enumerate(tokens):
        if token.text in ("(", "["):
            depth += 1
        elif token.text in (")", "]"):
            depth -= 1
        elif depth == 0 and token.is_word("FORMAT") and index + 1 < len(tokens):
            nxt = tokens[index + 1]
            after = tokens[index + 2] if index + 2 < len(tokens) else None
            # The clause ends the statement (a SETTINGS clause may follow it); a column or
            # alias named format is followed by something else.
            if nxt.kind in (Kind.WORD, Kind.QUOTED_IDENTIFIER) and (after is None or after.is_word("SETTINGS")):
                found = identifier(nxt)
    return found


def _calls(tokens: list[Token]) -> list[str]:
    return [
        identifier(token)
        for token, nxt in pairwise(tokens)
        if token.kind in (Kind.WORD, Kind.QUOTED_IDENTIFIER) and nxt.text == "("
    ]


def _at(tokens: list[Token], index: int) -> int:
    return tokens[index].start if index < len(tokens) else (tokens[-1].start + len(tokens[-1].text) if tokens else 0)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "a": "\a", "v": "\v", "\\": "\\"}


def _unescape(body: str, quote: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(body):
        ch = body[index]
        if ch == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            index += 2
        elif ch == quote and index + 1 < len(body) and body[index + 1] == quote:
            out.append(quote)
            index += 2
        else:
            out.append(ch)
            index += 1
    return "".join(out)
