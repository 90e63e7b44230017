"""`openstack overcloud migrate` on devcloud: a kill -9 in each phase of
a server's move (through the OVERCLOUD_MIGRATE_FAULT hook, not sleeps) is
finished by `migration resume` with exactly one of everything, and
`migration rollback` leaves the destination as it was.

The rest of test_migrate_servers.py, with a 3-tier scenario of its own
(``PREFIX``), so that the two modules run side by side.
"""

import pytest

from tests.functional import helpers
from tests.functional import test_migrate_servers as ms

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 700
PREFIX = 'mk'
SERVERS = helpers.servers_of(PREFIX)


def dest_state(dst):
    """What a migration leaves at the destination: servers, images, ports."""
    return helpers.dest_state(dst, PREFIX)


@pytest.fixture
def journal(tmp_path):
    return helpers.journal_url(tmp_path / 'journal.sqlite')


@pytest.mark.parametrize('point', [
    'after:stop', 'after:snapshot', 'before:transfer', 'after:transfer',
    'after:boot'])
def test_kill_in_each_phase_then_resume_makes_exactly_one_of_everything(
        clouds, journal, point):
    src, dst, project = clouds
    code, _out, _err = ms.migrate(journal, '--parallel', '3',
                                  fault='kill:%s' % point, servers=SERVERS)
    assert code == 137, 'the fault hook did not fire at %s' % point
    migration = ms.latest_migration(journal)
    code, out, err = ms.run(journal, 'migration', 'resume', migration,
                            '-f', 'json')
    assert code == 0, err
    assert {r['Status'] for r in ms.server_rows(out).values()} == {'done'}
    state = dest_state(dst)
    assert state['servers'] == sorted(SERVERS)
    assert len(state['images']) == 3, state
    assert state['ports'] == sorted('%s-port' % s for s in SERVERS)
    # Each verified server's snapshot is gone from the source Glance.
    assert ms.source_snapshots(src, migration) == []
    code, _out, err = ms.run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst) == {'servers': [], 'images': [], 'ports': []}
    for server in project.servers.values():
        assert src.compute.get_server(server.id).status == 'ACTIVE'
