"""Fixtures for every unit test."""

import logging

import pytest


@pytest.fixture(autouse=True)
def restore_logging():
    """OSC's shell, run in-process by the CLI tests, adds handlers to the
    root logger that write to that test's (then closed) stderr; put the
    root logger back as it was so a later test does not log into them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
