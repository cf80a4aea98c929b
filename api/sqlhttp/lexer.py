"""ClickHouse SQL tokens, split the way ClickHouse's own lexer splits them.

A port of the token boundaries of ``src/Parsers/Lexer.cpp`` (quoted strings and
identifiers with backslash and doubled-quote escapes, ``--`` / ``//`` / ``# `` line
comments, nested ``/* */`` comments, ``$tag$...$tag$`` heredocs, numbers with exponents).
The policy reads statements through it, so what it calls a string or a comment must be
what ClickHouse calls one: a function call hidden in something the policy took for a
string would escape it. Where this lexer cannot tell, it errs towards seeing code (a
refused query), never towards hiding it. Token values are not decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """What a token is, as ClickHouse's lexer sees it."""

    WHITESPACE = "whitespace"
    COMMENT = "comment"
    WORD = "word"  # bare word: keyword, identifier, function name
    QUOTED_IDENTIFIER = "quoted identifier"  # `x` or "x"
    STRING = "string"  # 'x', x'..', b'..', and heredocs
    NUMBER = "number"
    PUNCT = "punctuation"
    ERROR = "error"  # unclosed quote or comment, stray character


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text as written and where it starts."""

    kind: Kind
    text: str
    start: int

    @property
    def significant(self) -> bool:
        """Whether the token counts for the statement (not whitespace, not a comment)."""
        return self.kind not in (Kind.WHITESPACE, Kind.COMMENT)

    def is_word(self, *words: str) -> bool:
        """Whether the token is one of ``words`` (bare words, compared upper-cased)."""
        return self.kind is Kind.WORD and self.text.upper() in words


_WHITESPACE = " \t\n\r\f\v"
_PUNCT_PAIRS = ("->", "::", "||", "<=", ">=", "<>", "!=", "==", "@@")


def _word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def tokenize(sql: str) -> list[Token]:
    """Every token of ``sql``, whitespace and comments included (they concatenate back to it)."""
    tokens: list[Token] = []
    pos, end = 0, len(sql)
    previous_significant: Token | None = None
    while pos < end:
        kind, stop = _next(sql, pos, previous_significant)
        token = Token(kind, sql[pos:stop], pos)
        tokens.append(token)
        if token.significant:
            previous_significant = token
        pos = stop
    return tokens


_Scan = tuple[Kind, int]
"""A token's kind and where it stops."""


def _next(sql: str, pos: int, previous: Token | None) -> _Scan:
    """The token starting at ``pos``. The scanners below each claim tokens by their first
    character, and those sets do not overlap, so their order is only the order of the checks."""
    if sql[pos] in _WHITESPACE:
        stop = pos + 1
        while stop < len(sql) and sql[stop] in _WHITESPACE:
            stop += 1
        return Kind.WHITESPACE, stop
    return _literal(sql, pos, previous) or _comment(sql, pos) or _word_or_punct(sql, pos)


def _literal(sql: str, pos: int, previous: Token | None) -> _Scan | None:
    """A number, a quoted string or identifier, a heredoc, an ``x'..'`` / ``b'..'`` string."""
    ch = sql[pos]
    if ch.isascii() and ch.isdigit():
        return _number(sql, pos, after_dot=previous is not None and previous.text == ".")
    if ch in "'\"`":
        return _quoted(sql, pos, ch)
    if ch == "." and _dot_starts_number(sql, pos, previous):
        return _fraction(sql, pos)
    if ch == "$":
        return _dollar(sql, pos)
    if ch in "xXbB" and pos + 2 < len(sql) and sql[pos + 1] == "'":
        return _hex_or_bin_string(sql, pos)
    return None


def _dollar(sql: str, pos: int) -> _Scan | None:
    """A ``$tag$...$tag$`` heredoc, or a lone ``$``; None when ``$`` starts a word."""
    heredoc = _heredoc(sql, pos)
    if heredoc is not None:
        return Kind.STRING, heredoc
    if pos + 1 == len(sql) or not (_word_char(sql[pos + 1]) or sql[pos + 1] == "$"):
        return Kind.PUNCT, pos + 1
    return None


def _comment(sql: str, pos: int) -> _Scan | None:
    """``--`` / ``//`` / ``# `` line comments and nested ``/* */`` comments."""
    if sql.startswith(("--", "//"), pos):
        return Kind.COMMENT, _line_end(sql, pos)
    if sql.startswith("/*", pos):
        return _block_comment(sql, pos)
    if sql[pos] == "#":
        # ClickHouse: a comment only when followed by a space or "!" (shebang).
        if pos + 1 < len(sql) and sql[pos + 1] in " !":
            return Kind.COMMENT, _line_end(sql, pos)
        return Kind.ERROR, pos + 1
    return None


def _word_or_punct(sql: str, pos: int) -> _Scan:
    """A bare word, Unicode whitespace, an operator or punctuation; anything else is an error."""
    ch, end = sql[pos], len(sql)
    if _word_char(ch) or ch == "$":
        stop = pos + 1
        while stop < end and (_word_char(sql[stop]) or sql[stop] == "$"):
            stop += 1
        return Kind.WORD, stop
    if not ch.isascii():
        # ClickHouse skips Unicode whitespace (text pasted from word processors) and
        # rejects any other non-ASCII character outside strings and identifiers.
        stop = pos
        while stop < end and not sql[stop].isascii() and sql[stop].isspace():
            stop += 1
        return (Kind.WHITESPACE, stop) if stop > pos else (Kind.ERROR, pos + 1)
    if sql.startswith(("\\G", *_PUNCT_PAIRS), pos):
        return Kind.PUNCT, pos + 2
    if ch in "()[]{},;.+-*/%=<>?:|@":
        return Kind.PUNCT, pos + 1
    return Kind.ERROR, pos + 1


def _line_end(sql: str, pos: int) -> int:
    newline = sql.find("\n", pos)
    return len(sql) if newline < 0 else newline


def _block_comment(sql: str, pos: int) -> tuple[Kind, int]:
    depth, stop, end = 1, pos + 2, len(sql)
    while stop + 2 <= end:
        if sql.startswith("/*", stop):
            depth += 1
            stop += 2
        elif sql.startswith("*/", stop):
            depth -= 1
            stop += 2
            if depth == 0:
                return Kind.COMMENT, stop
        else:
            stop += 1
    return Kind.ERROR, end


def _quoted(sql: str, pos: int, quote: str) -> tuple[Kind, int]:
    kind = Kind.STRING if quote == "'" else Kind.QUOTED_IDENTIFIER
    stop, end = pos + 1, len(sql)
    while stop < end:
        ch = sql[stop]
        if ch == "\\":
            stop += 2
            continue
        if ch == quote:
            if stop + 1 < end and sql[stop + 1] == quote:
                stop += 2
                continue
            return kind, stop + 1
        stop += 1
    return Kind.ERROR, end


def _heredoc(sql: str, pos: int) -> int | None:
    """``$tag$ ... $tag$`` (tag possibly empty): the end position, or None."""
    tag_end = sql.find("$", pos + 1)
    if tag_end < 0:
        return None
    tag = sql[pos : tag_end + 1]
    close = sql.find(tag, tag_end + 1)
    return None if close < 0 else close + len(tag)


def _hex_or_bin_string(sql: str, pos: int) -> tuple[Kind, int]:
    digits = "0123456789abcdefABCDEF" if sql[pos] in "xX" else "01"
    stop, end = pos + 2, len(sql)
    while stop < end and sql[stop] in digits:
        stop += 1
    if stop >= end or sql[stop] != "'":
        return Kind.ERROR, end
    return Kind.STRING, stop + 1


def _dot_starts_number(sql: str, pos: int, previous: Token | None) -> bool:
    if pos + 1 >= len(sql) or not sql[pos + 1].isdigit():
        return False
    if previous is None:
        return True
    return not (previous.text in (")", "]") or previous.kind in (Kind.WORD, Kind.QUOTED_IDENTIFIER, Kind.NUMBER))


def _digits(sql: str, pos: int, hexadecimal: bool = False) -> int:
    allowed = "0123456789abcdefABCDEF_" if hexadecimal else "0123456789_"
    while pos < len(sql) and sql[pos] in allowed:
        pos += 1
    return pos


def _exponent(sql: str, pos: int, marks: str) -> int:
    end = len(sql)
    if pos + 1 < end and sql[pos] in marks:
        pos += 1
        if pos + 1 < end and sql[pos] in "+-":
            pos += 1
        pos = _digits(sql, pos)
    return pos


def _fraction(sql: str, pos: int) -> tuple[Kind, int]:
    return Kind.NUMBER, _exponent(sql, _digits(sql, pos + 1), "eE")


def _number(sql: str, pos: int, *, after_dot: bool) -> tuple[Kind, int]:
    """Digits as ClickHouse skips them; digits running into letters make a bare word."""
    end = len(sql)
    if after_dot:  # x.1.1: only a plain integer after a dot
        stop = _digits(sql, pos)
    else:
        hexadecimal = sql.startswith(("0x", "0X"), pos) and pos + 2 < end and sql[pos + 2] in "0123456789abcdefABCDEF"
        binary = sql.startswith(("0b", "0B"), pos) and pos + 2 < end and sql[pos + 2] in "01"
        stop = _digits(sql, pos + 2, hexadecimal) if hexadecimal or binary else _digits(sql, pos)
        if stop < end and sql[stop] == ".":
            stop = _digits(sql, stop + 1, hexadecimal)
        stop = _exponent(sql, stop, "pP" if hexadecimal else "eE")
    if stop < end and _word_char(sql[stop]):
        while stop < end and (_word_char(sql[stop]) or sql[stop] == "$"):
            stop += 1
        return Kind.WORD, stop
    return Kind.NUMBER, stop
