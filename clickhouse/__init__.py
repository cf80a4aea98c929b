"""Storage stage: ClickHouse client, migrations, columnar writer and queries."""
