"""pytest-xdist scheduling for the whole suite (tools/test.sh runs
``pytest -n N --dist loadfile``).

Each test module is one work unit, as with ``--dist loadfile``, so a
module's fixtures are made once, in one worker; but the functional
modules that need the bed to themselves (``BED_ACCESS = 'exclusive'``,
see tests/functional/conftest.py) form ONE unit: one worker runs them one
after another, so that two workers never both wait for the bed while a
third runs alone.  The units are handed out in this order: the exclusive
unit first (it runs right after the bed's start, before any module shares
the bed), then the modules that do not use the bed (the unit tests: they
fill the other workers while the bed starts and the exclusive unit runs),
then the modules that share the bed.  Within a group the modules that
say about how long they take on CI (``SECONDS = <n>`` at module level)
go first, longest first, so that no long module starts last and runs on
alone at the end; then the rest, largest first.  The end of every run
prints the slowest modules (seconds summed over their tests' setup, call
and teardown), the figures to keep ``SECONDS`` near.
(``--dist loadgroup`` would say this with marks, but pytest-xdist 3.8
cannot rename the node ids of pytest 9.2, so its groups are lost.)
"""

import functools
import pathlib
import re

import pytest

EXCLUSIVE_UNIT = 'devcloud-exclusive'
_EXCLUSIVE = re.compile(r"^BED_ACCESS = ['\"]exclusive['\"]", re.MULTILINE)


_NO_BED = re.compile(r"^BED_ACCESS = ['\"]none['\"]", re.MULTILINE)


@functools.lru_cache(maxsize=None)
def _source(rootdir, path):
    try:
        return (pathlib.Path(rootdir) / path).read_text()
    except OSError:
        return ''


def _exclusive(rootdir, path):
    return bool(_EXCLUSIVE.search(_source(rootdir, path)))


_SECONDS = re.compile(r"^SECONDS = (\d+)", re.MULTILINE)


def _seconds(rootdir, scope):
    """What the module says it takes (``SECONDS = <n>``), else 0."""
    if scope == EXCLUSIVE_UNIT:
        return 0
    found = _SECONDS.search(_source(rootdir, scope))
    return int(found.group(1)) if found else 0


def _rank(rootdir, scope):
    """0: the exclusive unit, 1: a module that does not use the bed, 2: a
    module that shares it."""
    if scope == EXCLUSIVE_UNIT:
        return 0
    if not scope.startswith('tests/functional/') or \
            _NO_BED.search(_source(rootdir, scope)):
        return 1
    return 2


@pytest.hookimpl(optionalhook=True)  # pytest-xdist may be absent
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue('dist') != 'loadfile':
        return None
    from xdist.scheduler import loadfile

    rootdir = str(config.rootpath)

    class Scheduling(loadfile.LoadFileScheduling):
        _ordered = False

        def _split_scope(self, nodeid):
            path = nodeid.split('::', 1)[0]
            return EXCLUSIVE_UNIT if _exclusive(rootdir, path) else path

        def _assign_work_unit(self, node):
            if not self._ordered:      # the first call: the queue is whole
                self._ordered = True
                units = sorted(self.workqueue.items(),   # stable: by size
                               key=lambda unit: (
                                   _rank(rootdir, unit[0]),
                                   -_seconds(rootdir, unit[0])))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return Scheduling(config, log)



_MODULE_SECONDS = {}


def pytest_runtest_logreport(report):
    module = report.nodeid.split('::', 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + getattr(
        report, 'duration', 0.0)


def pytest_terminal_summary(terminalreporter):
    slowest = sorted(_MODULE_SECONDS.items(), key=lambda item: -item[1])[:12]
    if not slowest or slowest[0][1] < 1:
        return
    terminalreporter.write_sep('=', 'slowest modules (setup + call + '
                                    'teardown of their tests, seconds)')
    for module, seconds in slowest:
        terminalreporter.write_line('%9.1f  %s' % (seconds, module))
