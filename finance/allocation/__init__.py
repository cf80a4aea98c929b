"""Shared-cost pools allocated to consumers by declared rules, exactly.

* ``pools``: the YAML file of pools (and units of value), validated whole at load;
* ``periods``: UTC days and months as the allocator cuts time;
* ``engine``: the pure split of one pool's period over its consumers and their runs;
* ``store``: reading signals and stored allocations, writing exact deltas;
* ``job``: when a period is (re)allocated, on a background thread or on demand.
"""
