"""The README's commands work in the order written, on a fresh home.

Every ``$ `` line of the README's ``console`` blocks runs, in order, in one
shell from the checkout's root, as a new user would type them: HOME is a
fresh directory (no clouds.yaml, no ~/.local/share), and no
OVERCLOUD_DEVCLOUD_*, OS_* or journal variable is set.  ``tools/test.sh``
is the one line left out: this test is part of it.

The README's commands use the bed in the checkout's ``.devcloud/`` (their
default), which must be the bed this test session runs on: otherwise
``tools/demo.sh`` would bring up a second bed beside it, so the test is
skipped then (``tools/test.sh`` uses that home).
"""

import os
import pathlib
import re
import shlex
import subprocess

import openstack
import pytest

from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import scenario

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 250
ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / 'README.md'
LEFT_OUT = {'tools/test.sh': 'this test is part of it'}


def readme_commands():
    """The README's commands, block by block, without prompts and comments."""
    blocks = re.findall(r'^```console\n(.*?)^```', README.read_text(),
                        re.S | re.M)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith('$ '):
                # The README comments a command after two or more spaces.
                commands.append(re.sub(r'\s{2,}#.*$', '', line[2:]).strip())
    return commands


def test_the_readme_lists_its_commands():
    commands = readme_commands()
    assert commands[:2] == ['tools/demo.sh', 'tools/test.sh']
    assert 'eval "$(.venv/bin/overcloud-devcloud env)"' in commands


def fresh_environment(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('OS_', 'OVERCLOUD_', 'XDG_'))}
    env['HOME'] = str(home)
    return env


def test_the_readme_commands_run_in_order_on_a_fresh_home(devcloud,
                                                          tmp_path):
    checkout_bed = layout_mod.checkout_home()
    if checkout_bed is None or devcloud.layout.home != checkout_bed:
        pytest.skip('the session bed (%s) is not the checkout default (%s) '
                    "the README's commands use; running them would start a "
                    'second bed' % (devcloud.layout.home, checkout_bed))
    home = tmp_path / 'home'
    home.mkdir()
    commands = [c for c in readme_commands() if c not in LEFT_OUT]
    script = ['set -euo pipefail']
    for command in commands:
        script.append('echo %s >&2' % shlex.quote('README $ ' + command))
        script.append(command)
    try:
        result = subprocess.run(['bash', '-c', '\n'.join(script)], cwd=ROOT,
                                env=fresh_environment(home),
                                capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stderr[-4000:]
        for command in commands:
            assert 'README $ ' + command in result.stderr
        # The demo's migration report, then `server list` in devcloud-a
        # (the sources, kept) and devcloud-b-member's `image list`.
        assert '3t-web' in result.stdout
        assert 'was not found' not in result.stderr
        # One home: nothing was made in the fresh HOME's data directory.
        assert not (home / '.local' / 'share' / 'overcloud-devcloud').exists()
        assert (checkout_bed / 'demo-timeline.svg').is_file()
    finally:
        undo_the_demo(checkout_bed, home)


def undo_the_demo(bed_home, home):
    """Roll the demo's migrations back and delete its project: the other
    tests count servers and quotas."""
    journal = 'sqlite:///%s' % (bed_home / 'demo-journal.sqlite')
    openstack_cli = str(ROOT / '.venv' / 'bin' / 'openstack')
    env = dict(fresh_environment(home),
               OS_CLIENT_CONFIG_FILE=str(bed_home / 'clouds.yaml'),
               OVERCLOUD_MIGRATE_JOURNAL_URL=journal)
    listed = subprocess.run([openstack_cli, 'overcloud', 'migration', 'list',
                             '-f', 'value', '-c', 'ID', '-c', 'State'],
                            env=env, capture_output=True, text=True,
                            timeout=300)
    for line in listed.stdout.splitlines():
        migration, state = line.split()
        if state != 'rolled-back':
            subprocess.run([openstack_cli, 'overcloud', 'migration',
                            'rollback', migration], env=env,
                           capture_output=True, timeout=900)
    for cloud in ('devcloud-a', 'devcloud-b'):
        conn = openstack.connect(cloud=cloud)
        try:
            scenario.delete(conn, '3t')
        finally:
            conn.close()
