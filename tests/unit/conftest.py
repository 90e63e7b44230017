"""Fixtures for every unit test."""

import logging

import pytest


try:
    import setproctitle
except ImportError:  # then pytest-xdist does not rename its workers
    setproctitle = None
#: this process's title before pytest-xdist renames it after each test
TITLE = setproctitle.getproctitle() if setproctitle else None


@pytest.fixture(autouse=True)
def own_process_title():
    """Under pytest-xdist (tools/test.sh) a worker is renamed after the
    test it runs; the devcloud tests name a port's holder (this very
    process) by its command, so give the test the title it started with."""
    if setproctitle is not None:
        setproctitle.setproctitle(TITLE)
    yield


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
