"""Resource attributes for run computation (ownership rules may match them)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from otelspend.clickhouse.client import Store


class ResourceAttributes:
    """resource_id -> attributes, from recent batches, else from the store (bounded)."""

    def __init__(self, store: Store, capacity: int = 50_000) -> None:
        self.store = store
        self.capacity = capacity
        self._cache: OrderedDict[int, dict[str, str]] = OrderedDict()

    def remember(self, resources: Mapping[int, tuple[str, list[tuple[str, str]]]]) -> None:
        for resource_id, (_, pairs) in resources.items():
            if resource_id not in self._cache:
                self._cache[resource_id] = dict(pairs)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def __call__(self, resource_id: int) -> Mapping[str, str]:
        found = self._cache.get(resource_id)
        if found is None:
            rows = self.store.rows(
                f"SELECT attributes FROM {self.store.database}.resources WHERE resource_id = {{r:UInt64}} LIMIT 1",
                {"r": resource_id},
            )
            found = dict(rows[0][0]) if rows else {}
            self._cache[resource_id] = found
        return found
