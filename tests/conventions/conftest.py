"""One running otelspend (own chDB database) shared by the convention tests of a module.

Starting a server costs more than a replay; every scenario writes its own trace and its own
``service.name``, and every figure is read by trace id or service, so scenarios sharing a
server cannot see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelspend.app import OtelSpend
from tests.conftest import Running, make_settings


@pytest.fixture(scope="module")
def shared_server(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings = make_settings(chdb_path, tmp_path_factory.mktemp("data"), f"t_{uuid.uuid4().hex[:12]}")
    app = OtelSpend(settings)
    app.start()
    try:
        yield Running(app)
    finally:
        app.stop()
