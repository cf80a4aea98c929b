"""What the read-only SQL endpoint asks the engine about itself once, at start."""

from __future__ import annotations

VERSION_AND_TIMEZONE = "SELECT version(), timezone()"
TABLE_FUNCTIONS = "SELECT name FROM system.table_functions"
SETTINGS = "SELECT name, value FROM system.settings"
