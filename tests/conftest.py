"""pytest-xdist scheduling for the whole suite (tools/test.sh runs
``pytest -n N --dist loadfile``).

Each test module is one work unit, as with ``--dist loadfile``, so a
module's fixtures are made once, in one worker; but the functional
modules that need the bed to themselves (``BED_ACCESS = 'exclusive'``,
see tests/functional/conftest.py) form ONE unit: one worker runs them one
after another, so that two workers never both wait for the bed while a
third runs alone.  (``--dist loadgroup`` would say this with marks, but
pytest-xdist 3.8 cannot rename the node ids of pytest 9.2, so its groups
are lost.)
"""

import functools
import pathlib
import re

import pytest

EXCLUSIVE_UNIT = 'devcloud-exclusive'
_EXCLUSIVE = re.compile(r"^BED_ACCESS = ['\"]exclusive['\"]", re.MULTILINE)


@functools.lru_cache(maxsize=None)
def _exclusive(rootdir, path):
    try:
        return bool(_EXCLUSIVE.search(
            (pathlib.Path(rootdir) / path).read_text()))
    except OSError:
        return False


@pytest.hookimpl(optionalhook=True)  # pytest-xdist may be absent
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue('dist') != 'loadfile':
        return None
    from xdist.scheduler import loadfile

    rootdir = str(config.rootpath)

    class Scheduling(loadfile.LoadFileScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split('::', 1)[0]
            return EXCLUSIVE_UNIT if _exclusive(rootdir, path) else path

    return Scheduling(config, log)

