"""PDF file names: one per owner, whatever the owner is called, never outside the directory."""

from __future__ import annotations

import pytest

from otelspend.commands.statements import slug

OWNERS = ["support", "search-v2", "a/b", "a-b", "a b", "../etc", "..", ".", "_unattributed", "", "équipe", "a~b",
          "cc.100", "-x-", "x"]  # fmt: skip


def test_every_owner_gets_its_own_safe_name() -> None:
    names = [slug(owner) for owner in OWNERS]
    assert len(set(names)) == len(OWNERS), names
    for name in names:
        assert name and "/" not in name and name not in (".", "..") and not name.startswith(".")


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        pytest.param("support", "support", id="a safe name is kept"),
        pytest.param("cc.100", "cc.100", id="dots are safe inside a name"),
        pytest.param("", "_unattributed", id="the unattributed bucket"),
    ],
)
def test_readable_names_stay_readable(owner: str, name: str) -> None:
    assert slug(owner) == name


def test_unsafe_names_keep_their_readable_part() -> None:
    assert slug("a/b").startswith("a-b~") and slug("_unattributed").startswith("_unattributed~")
