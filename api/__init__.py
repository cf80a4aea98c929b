"""API stage: REST API, dashboard, health and metrics."""
