"""Movers: the ways a DTN service moves a file to another DTN."""
