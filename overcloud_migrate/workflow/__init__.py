"""Running migrations: from a checked plan to the destination."""
