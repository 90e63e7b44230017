"""Small helpers shared by the command modules (options, output)."""
