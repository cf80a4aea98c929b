"""The lexer splits SQL where ClickHouse's lexer does: what it calls a string or a comment
must be one for ClickHouse too, or a call could hide from the policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelspend.api.sqlhttp.lexer import Kind, tokenize

SHORT = {
    Kind.WORD: "w",
    Kind.STRING: "s",
    Kind.QUOTED_IDENTIFIER: "q",
    Kind.NUMBER: "n",
    Kind.PUNCT: "p",
    Kind.ERROR: "e",
}


def kinds(sql: str) -> list[str]:
    """Significant tokens as ``kind:text`` (w word, s string, q quoted identifier, n number,
    p punctuation, e error)."""
    return [f"{SHORT[t.kind]}:{t.text}" for t in tokenize(sql) if t.significant]


CALL_1 = ["p:(", "n:1", "p:)"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("SELECT 'a\\'b', x", ["w:SELECT", "s:'a\\'b'", "p:,", "w:x"], id="backslash-escaped-quote"),
        pytest.param("'it''s' y", ["s:'it''s'", "w:y"], id="doubled-quote"),
        pytest.param("`a``b`(1)", ["q:`a``b`", *CALL_1], id="backquoted"),
        pytest.param('"file"(1)', ['q:"file"', *CALL_1], id="double-quoted"),
        pytest.param("a -- c\nb", ["w:a", "w:b"], id="dash-comment"),
        pytest.param("a // c\nb", ["w:a", "w:b"], id="slash-comment"),
        pytest.param("a # c\nb", ["w:a", "w:b"], id="hash-space-comment"),
        pytest.param("a #c", ["w:a", "e:#", "w:c"], id="hash-without-space-is-not-a-comment"),
        pytest.param("a /* x /* y */ z */ b", ["w:a", "w:b"], id="nested-block-comment"),
        pytest.param("$$ file('x') $$, f", ["s:$$ file('x') $$", "p:,", "w:f"], id="heredoc"),
        pytest.param("$t$ a $$ b $t$", ["s:$t$ a $$ b $t$"], id="tagged-heredoc"),
        pytest.param("$$'$$, file(1)", ["s:$$'$$", "p:,", "w:file", *CALL_1], id="quote-inside-heredoc"),
        pytest.param("1e-5 x", ["n:1e-5", "w:x"], id="exponent"),
        pytest.param("1e--x", ["n:1e-", "p:-", "w:x"], id="exponent-sign-is-not-a-comment"),
        pytest.param("t.1.2", ["w:t", "p:.", "n:1", "p:.", "n:2"], id="tuple-access"),
        pytest.param(".5", ["n:.5"], id="leading-dot-number"),
        pytest.param("0x1F x'AB' b'01'", ["n:0x1F", "s:x'AB'", "s:b'01'"], id="hex-and-binary"),
        pytest.param("1abc", ["w:1abc"], id="digits-then-letters"),
        pytest.param("file\u00a0(1)", ["w:file", *CALL_1], id="unicode-space"),
        pytest.param("fil\u00e9(1)", ["w:fil", "e:\u00e9", *CALL_1], id="non-ascii-is-an-error"),
        pytest.param("'open", ["e:'open"], id="unclosed-string"),
        pytest.param("/* open", ["e:/* open"], id="unclosed-comment"),
        pytest.param(
            "a->b :: c || d != e <> f <= g",
            ["w:a", "p:->", "w:b", "p:::", "w:c", "p:||", "w:d", "p:!=", "w:e", "p:<>", "w:f", "p:<=", "w:g"],
            id="operators",
        ),
    ],
)
def test_tokens(sql, expected):
    assert kinds(sql) == expected


@given(st.text(alphabet=st.sampled_from(list("ab1 .'\"`$-/*#\n\\(),=x;e+")), max_size=60))
def test_tokens_cover_the_text_exactly(sql):
    tokens = tokenize(sql)
    assert "".join(t.text for t in tokens) == sql
    assert all(t.text for t in tokens)
    assert [t.start for t in tokens] == [sum(len(u.text) for u in tokens[:i]) for i in range(len(tokens))]
