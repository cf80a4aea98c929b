from otelspend.cli import main

raise SystemExit(main())
