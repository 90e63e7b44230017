"""The Receiver: the destination side of ``migrate --handoff``."""
