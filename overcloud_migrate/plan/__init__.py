"""The migration plan: model, source inventory, prechecks, replication."""
