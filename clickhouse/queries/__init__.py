"""SQL by area, one module each: the statements and the small functions that run them.

Modules here import only the kernel and ``otelspend.clickhouse``; callers pass and get plain
values (dicts, lists, Arrow tables), never their own types.
"""
