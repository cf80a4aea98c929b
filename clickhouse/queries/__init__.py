"""SQL, one module per area: every statement bound (``{name:Type}`` parameters), identifiers whitelisted."""
