"""`openstack overcloud migrate` moves volumes, on devcloud.

The 3-tier project with volumes (``scenario --volumes``): ``mv-db`` boots
from a volume and has ``mv-db-data`` (standard) and ``mv-db-log`` (fast)
attached; ``mv-app`` boots from the image and has ``mv-app-data``.  Both
move to devcloud-b with ``--volume-type-map fast=mv-gold`` (a type made
for this test at the destination); a kill -9 after each volume phase (the
OVERCLOUD_MIGRATE_FAULT hook) is finished by `migration resume`, one phase
further each time; then every volume is compared byte for byte on the two
clouds' shares (``qemu-img compare``: the source file may be a qcow2
overlay chain, the destination's is raw).  A second run creates nothing;
rollback leaves the destination as it was.  Bad input is refused with a
sentence, nothing created, the source server running.
"""

import json
import os
import re
import subprocess
import sysconfig

import pytest

from overcloud_devcloud import scenario
from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 650
BIN = sysconfig.get_path('scripts')
#: sets the destination's Cinder quotas, and cleans and counts every
#: marked volume, snapshot and image in both clouds (the other modules'
#: in-flight snapshots carry the same marker): in a project of its own
#: (tests/functional/conftest.py), beside the other modules
PROJECT = 'om-test-mv'
OPENSTACK = os.path.join(BIN, 'openstack')
PREFIX = 'mv'
SERVERS = ['%s-db' % PREFIX, '%s-app' % PREFIX]
GOLD = 'mv-gold'
TYPE_MAP = ('--volume-type-map', 'fast=%s' % GOLD)
WAIT = 300
MARK = 'om_migration'


@pytest.fixture(scope='module')
def clouds(devcloud):
    with helpers.volume_project(devcloud.layout, PREFIX, GOLD, _clean,
                                WAIT) as found:
        yield found


def _clean(conn):
    scenario.delete(conn, PREFIX)
    storage = conn.block_storage
    for volume in list(storage.volumes()):
        if MARK in (volume.metadata or {}):
            _delete_volume(conn, volume)
    for snapshot in list(storage.snapshots()):
        if MARK in (snapshot.metadata or {}):
            storage.delete_snapshot(snapshot, ignore_missing=True)
            storage.wait_for_delete(snapshot, wait=WAIT)
    for image in conn.image.images(owner=conn.current_project_id):
        if (image.name or '').startswith(('om-%s-' % PREFIX, 'om-vol-')) or \
                MARK in (image.properties or {}):
            conn.image.delete_image(image, ignore_missing=True)


def _delete_volume(conn, volume):
    helpers.delete_volume(conn, volume, WAIT)


def run(journal, *args, fault=None):
    env = dict(os.environ, OVERCLOUD_MIGRATE_JOURNAL_URL=journal)
    env.pop('OVERCLOUD_MIGRATE_FAULT', None)
    if fault:
        env['OVERCLOUD_MIGRATE_FAULT'] = fault
    result = subprocess.run([OPENSTACK, '--os-cloud', 'devcloud-a',
                             'overcloud', *args], capture_output=True,
                            text=True, env=env, timeout=1800)
    return result.returncode, result.stdout, result.stderr


def migrate(journal, *extra, fault=None, servers=SERVERS):
    return run(journal, 'migrate', *servers, '--dest-cloud', 'devcloud-b',
               '-f', 'json', *extra, fault=fault)


def latest_migration(journal):
    code, out, err = run(journal, 'migration', 'list', '-f', 'json')
    assert code == 0, err
    return json.loads(out)[-1]['ID']


def rows_of(stdout, kind):
    return {r['Name']: r for r in json.loads(stdout) if r['Type'] == kind}


@pytest.fixture
def journal(tmp_path):
    return 'sqlite:///%s' % (tmp_path / 'journal.sqlite')


def dest_state(dst):
    """What a migration leaves at the destination."""
    return {
        'servers': sorted(s.name for s in dst.compute.servers()
                          if s.name in SERVERS),
        'volumes': sorted((v.name or v.id) for v in dst.block_storage.volumes()
                          if MARK in (v.metadata or {})),
        'images': sorted(i.name for i in dst.image.images(
            owner=dst.current_project_id) if MARK in (i.properties or {})),
    }


def source_temporaries(src):
    """What the data path makes at the source; nothing may be left."""
    storage = src.block_storage
    return {
        'snapshots': [s.id for s in storage.snapshots()
                      if MARK in (s.metadata or {})],
        'volumes': [v.id for v in storage.volumes()
                    if MARK in (v.metadata or {})],
        'images': [i.id for i in src.image.images(
            owner=src.current_project_id)
            if (i.name or '').startswith('om-vol-')],
    }


NO_TEMPORARIES = {'snapshots': [], 'volumes': [], 'images': []}


def _sources_running(src, project):
    for tier in ('db', 'app'):
        server = src.compute.get_server(project.servers[tier].id)
        if server.status == 'SHUTOFF':
            src.compute.start_server(server)
        src.compute.wait_for_server(server, status='ACTIVE', wait=WAIT)


def test_dry_run_lists_every_volume_and_changes_nothing(clouds, journal):
    src, dst, project, _layout = clouds
    before = dest_state(dst)
    code, out, err = migrate(journal, '--dry-run', *TYPE_MAP)
    assert code == 0, err
    volumes = rows_of(out, 'volume')
    assert set(volumes) == {'mv-db-data', 'mv-db-log', 'mv-app-data',
                            project.volumes['db'][0].name
                            or project.volumes['db'][0].id}
    assert all(r['Status'].startswith('planned') for r in volumes.values())
    assert dest_state(dst) == before
    assert source_temporaries(src) == NO_TEMPORARIES


def test_a_type_with_no_destination_mapping_is_refused(clouds, journal):
    src, dst, project, _layout = clouds
    dst_types = [t.name for t in dst.block_storage.types()]
    assert 'fast' in dst_types  # so the map below names a missing type
    code, _out, err = migrate(journal, '--volume-type-map',
                              'fast=mv-missing')
    assert code != 0
    assert "volume type 'fast' is mapped to 'mv-missing', which does not " \
        "exist at the destination (volumes 'mv-db-log')" in err
    assert 'nothing was changed' in err and 'Traceback' not in err
    # A source type the destination does not have, not mapped at all.
    only = src.block_storage.create_type(name='mv-src-only')
    try:
        extra = src.block_storage.create_volume(
            name='mv-app-extra', size=1, volume_type='mv-src-only')
        src.block_storage.wait_for_status(extra, 'available',
                                          failures=['error'], wait=WAIT)
        src.compute.create_volume_attachment(project.servers['app'],
                                             volume_id=extra.id)
        src.block_storage.wait_for_status(extra, 'in-use',
                                          failures=['error'], wait=WAIT)
        try:
            code, _out, err = migrate(journal, *TYPE_MAP,
                                      servers=['mv-app'])
            assert code != 0
            assert "volume type 'mv-src-only' has no destination mapping" \
                in err and '--volume-type-map mv-src-only=<type>' in err
        finally:
            src.compute.delete_volume_attachment(project.servers['app'],
                                                 extra.id)
            src.block_storage.wait_for_status(extra, 'available',
                                              failures=['error'], wait=WAIT)
            _delete_volume(src, extra)
    finally:
        src.block_storage.delete_type(only)
    assert dest_state(dst) == {'servers': [], 'volumes': [], 'images': []}
    for tier in ('db', 'app'):
        assert src.compute.get_server(project.servers[tier].id).status == \
            'ACTIVE'


def test_destination_gigabytes_short_names_the_amount_missing(clouds,
                                                              journal):
    src, dst, project, _layout = clouds
    project_id = dst.current_project_id
    reply = dst.block_storage.get('/os-quota-sets/%s?usage=True'
                                  % project_id)
    used = reply.json()['quota_set']['gigabytes']['in_use']
    before = reply.json()['quota_set']['gigabytes']['limit']
    dst.block_storage.update_quota_set(project_id, gigabytes=used + 1)
    try:
        code, _out, err = migrate(journal, *TYPE_MAP)
    finally:
        dst.block_storage.update_quota_set(project_id, gigabytes=before)
    assert code != 0
    # four 1 GiB volumes, about one free (another run may use the bed)
    assert re.search(r'needs 4 GiB more at the destination, but only \d+ '
                     r'GiB of %d GiB are free: \d+ GiB missing' % (used + 1),
                     err), err
    assert 'Traceback' not in err
    assert dest_state(dst) == {'servers': [], 'volumes': [], 'images': []}
    assert source_temporaries(src) == NO_TEMPORARIES
    for tier in ('db', 'app'):
        assert src.compute.get_server(project.servers[tier].id).status == \
            'ACTIVE'


def test_a_source_volume_in_error_during_the_copy_is_refused(clouds,
                                                             journal):
    src, dst, project, _layout = clouds
    # The root volume's snapshot is taken; then the data volume breaks.
    code, _out, _err = migrate(journal, *TYPE_MAP, servers=['mv-db'],
                               fault='kill:after:volume-snapshot')
    assert code == 137, 'the fault hook did not fire'
    migration = latest_migration(journal)
    data = next(v for v in project.volumes['db'] if v.name == 'mv-db-data')
    src.block_storage.reset_volume_status(data, status='error',
                                          attach_status='attached',
                                          migration_status=None)
    try:
        code, out, err = run(journal, 'migration', 'resume', migration,
                             '-f', 'json')
    finally:
        src.block_storage.reset_volume_status(data, status='in-use',
                                              attach_status='attached',
                                              migration_status=None)
    assert code != 0
    assert '1 of 1 servers failed' in err
    # The server's row says why, in a sentence naming the volume.
    assert "Volume 'mv-db-data' (%s) of server 'mv-db' is error at the " \
        'source, so it cannot be copied consistently' % data.id in \
        rows_of(out, 'server')['mv-db']['Status']
    assert dest_state(dst) == {'servers': [], 'volumes': [], 'images': []}
    assert source_temporaries(src) == NO_TEMPORARIES
    assert src.compute.get_server(project.servers['db'].id).status == \
        'ACTIVE'
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


# The phases a kill -9 interrupts, in the order a run reaches them: each
# resume goes one phase further, then one resume finishes.  A kill after
# the boot ends the killed server's flow: the resume finds its copy ACTIVE,
# marks it migrated and cleans its volumes' temporaries (pipeline), so
# verify-volumes and volume-cleanup are not kill points of the same server.
KILLS = ('volume-snapshot', 'volume-clone', 'volume-upload',
         'volume-transfer', 'volume-create', 'boot')


def test_volumes_move_byte_identical_through_a_kill_in_every_phase(
        clouds, journal):
    src, dst, project, layout = clouds
    code, _out, _err = migrate(journal, *TYPE_MAP,
                               fault='kill:after:%s' % KILLS[0])
    assert code == 137, 'the fault hook did not fire at %s' % KILLS[0]
    migration = latest_migration(journal)
    for phase in KILLS[1:]:
        code, _out, err = run(journal, 'migration', 'resume', migration,
                              '-f', 'json', fault='kill:after:%s' % phase)
        assert code == 137, 'no kill after %s: %s' % (phase, err[-2000:])
    code, out, err = run(journal, 'migration', 'resume', migration, '-f',
                         'json')
    assert code == 0, err
    servers = rows_of(out, 'server')
    assert {r['Status'] for r in servers.values()} == {'done'}, servers
    volumes = rows_of(out, 'volume')
    assert len(volumes) == 4
    for row in volumes.values():
        assert row['Status'] == 'created' and row['Destination ID']
        assert row['Bytes'] > 0 and row['MB/s'] > 0

    # Exactly one destination volume per source volume, nothing left over.
    copies = {}
    for volume in dst.block_storage.volumes():
        if (volume.metadata or {}).get(MARK) == migration:
            copies.setdefault(volume.metadata['om_source_volume'],
                              []).append(volume)
    source_volumes = [v for tier in ('db', 'app')
                      for v in project.volumes[tier]]
    assert sorted(copies) == sorted(v.id for v in source_volumes)
    assert all(len(found) == 1 for found in copies.values()), copies
    # Only the image the image-booted server boots from stays; no volume
    # image is left.
    assert dest_state(dst)['images'] == [
        'om-%s-app-%s' % (PREFIX, migration[:8])]
    assert source_temporaries(src) == NO_TEMPORARIES

    addresses = {'db': ['10.10.2.20'], 'app': ['10.10.2.10']}
    for tier in ('db', 'app'):
        dest_server = helpers.check_copy_with_volumes(
            dst, layout, servers['%s-%s' % (PREFIX, tier)]['Destination ID'],
            addresses[tier], project.volumes[tier],
            {v: found[0].id for v, found in copies.items()}, {'fast': GOLD})
        if tier == 'db':
            assert dest_server.image in (None, '', {}) or \
                not dest_server.image.get('id')

    # A second run creates nothing.
    before = dest_state(dst)
    code, out, err = migrate(journal, *TYPE_MAP)
    assert code == 0, err
    assert dest_state(dst) == before
    assert source_temporaries(src) == NO_TEMPORARIES

    # Rollback leaves the destination as it was.
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst) == {'servers': [], 'volumes': [], 'images': []}
    assert source_temporaries(src) == NO_TEMPORARIES
    for tier in ('db', 'app'):
        assert src.compute.get_server(project.servers[tier].id).status == \
            'ACTIVE'
