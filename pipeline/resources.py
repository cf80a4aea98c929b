"""Resource attributes for run computation (ownership rules may match them).

Two owners, no sharing:

* ``ResourceCache`` belongs to the pipeline thread: it learns every batch's resources in
  ``Pipeline.process`` and what the store writer fetched for runs it had to compute; run
  emission plans read it (``Emitter.plan``). It never does I/O.
* A run whose resource the cache does not hold is computed by the store writer
  (``Emitter.commit``), which reads the missing ids with ``fetch_resource_attributes`` in
  one query and hands what it found back to the pipeline thread.

``StoredResourceAttributes`` is the store-backed lookup for code that owns the store for
the whole call: the offline re-price, and the live one while it holds the pipeline thread
with the writer drained.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import resources as resource_queries

Attributes = Mapping[str, str]
Resources = Mapping[int, tuple[str, list[tuple[str, str]]]]
"""resource_id -> (service name, attribute pairs), as a batch carries them."""

FETCH_CHUNK = 5_000


class ResourceCache:
    """resource_id -> attributes, bounded (least recently learned dropped first)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[int, Attributes] = OrderedDict()

    def remember(self, resources: Resources) -> None:
        """Learn the resources of a batch."""
        for resource_id, (_, pairs) in resources.items():
            if resource_id not in self._cache:
                self._cache[resource_id] = dict(pairs)
        self._trim()

    def learn(self, found: Mapping[int, Attributes]) -> None:
        """Learn attributes the store writer fetched."""
        for resource_id, attributes in found.items():
            self._cache.setdefault(resource_id, attributes)
        self._trim()

    def get(self, resource_id: int) -> Attributes | None:
        """The attributes of one resource, if held."""
        return self._cache.get(resource_id)

    def lookup(self, resource_ids: Iterable[int]) -> tuple[dict[int, Attributes], set[int]]:
        """(known attributes by id, ids not held)."""
        known: dict[int, Attributes] = {}
        missing: set[int] = set()
        for resource_id in resource_ids:
            found = self._cache.get(resource_id)
            if found is None:
                missing.add(resource_id)
            else:
                known[resource_id] = found
        return known, missing

    def __len__(self) -> int:
        return len(self._cache)

    def _trim(self) -> None:
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)


def fetch_resource_attributes(store: Store, resource_ids: Collection[int]) -> dict[int, Attributes]:
    """Stored attributes of these resources (ids the store does not know map to ``{}``)."""
    found: dict[int, Attributes] = {}
    ids = sorted(resource_ids)
    for start in range(0, len(ids), FETCH_CHUNK):
        chunk = ids[start : start + FETCH_CHUNK]
        rows = store.rows(*resource_queries.attributes(store.database, chunk))
        found.update((int(resource_id), dict(pairs)) for resource_id, pairs in rows)
    for resource_id in ids:
        found.setdefault(resource_id, {})
    return found


class StoredResourceAttributes:
    """resource_id -> attributes from the store, cached; for a caller that owns the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[int, Attributes] = {}

    def __call__(self, resource_id: int) -> Attributes:
        """The resource's attributes ({} when the store has none), read once, then cached."""
        found = self._cache.get(resource_id)
        if found is None:
            found = fetch_resource_attributes(self.store, [resource_id])[resource_id]
            self._cache[resource_id] = found
        return found
