"""SQL has one home: the store's query modules, one per area.

Every statement otelspend sends to ClickHouse is written in this package (the schema itself
is the numbered migrations in ``clickhouse/migrations/``). The API, the pipeline, the
composition root and the finance layer call these functions and run what they return;
none of them writes SQL.

Modules, by area:

==============  ===========================================================================
``vocabulary``  dimensions and metrics, with the SQL of each figure's partials (one table)
``rollup_plan`` which tables answer an aggregate query: the window split, ``Plan``
``rollups``     aggregate queries over rollups and raw edges (the builder); rollup rebuild
``runs``        runs and breakdown rows: the rule for rows in force, run pages, records
``spans``       spans by trace and by start time, role updates, unpriced calls
``outcomes``    outcomes posted over the API
``resources``   resource attributes
``outliers``    what no rollup answers: costly calls without a successful result
``migrations``  ``schema_migrations`` bookkeeping, table existence, raw-span TTL
``controls``    spend controls: rollup series for the anomaly detectors, budget spend, alert history
``export``      the FOCUS export's charges: priced calls split by cost component and exact rate
``statements``  monthly chargeback statements: the hourly run rollups per owner
``sql``         shared plumbing: ``render``, ``Params``, ``Query``, select lists, time ranges
==============  ===========================================================================

New areas (billing, allocation, alerts, exports, ...) get a module of their own beside these.

Conventions
-----------
* **Statements are templates**: module-level strings named in capitals, with two kinds of
  placeholder and no others (the migrations' ``{db}`` is the first kind):

  - ``{name}`` is an identifier written into the text by ``sql.render``: ``{db}`` (the
    database, validated by the settings), a table or column from a fixed list in the module,
    a vocabulary column (``{call_dimension}``), the column an aggregate reads (``{value}``).
    ``render`` takes plain identifiers only, or a ``sql.Fragment`` the module assembled
    itself from such names (a select list, WHERE terms); a missing value raises.
  - ``{name:Type}`` is a value, bound by ClickHouse server-side (clickhouse-connect
    ``parameters=``): everything from a request, a file, a setting or the pipeline travels
    this way. Fixed names in templates have no digits; ``sql.Params`` generates
    ``<prefix><n>`` names for SQL assembled piece by piece (filters), so both mix safely.

  No f-string wraps a template, and there is no ``%s``, ``str.format`` or ad-hoc marker.
* **A function per statement** takes the database name and the values and returns a
  ``sql.Query`` (text, parameters) for the caller to run: ``store.rows(*query)``. The
  functions are pure (testable without a store); decoding rows into records stays with the
  caller.
* **Identifiers that vary are whitelisted here**: column names against the column tables of
  ``otelspend.record`` (``sql.checked_columns``), dimensions and metrics from
  ``vocabulary``. A request string never reaches the text.
* **A rule is stated once**: the rows in force of a collapsing table (``runs.in_force``, and
  ``runs.current`` for rows already fetched), an unpriced call (``spans.UNPRICED_CALL``),
  how a window splits into rollup days, hours and raw edges (``rollup_plan.Window``).
"""
