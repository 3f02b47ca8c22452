"""PostgreSQL, the record: tables, sessions and migrations. Central services only; hubs never import it."""
