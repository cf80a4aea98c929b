"""``python -m otelspend``: the ``otelspend`` command line."""

from otelspend.cli import main

raise SystemExit(main())
