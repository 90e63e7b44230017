"""`openstack overcloud migrate --warm` on devcloud, over two real DTNs.

Two ``overcloud-dtn-api`` services (site A and site B, builtin mover, a
shared data token) export each cloud's Cinder share (the directory
Cinder's NFS driver keeps ``volume-<ID>`` files in) next to a staging
directory.  The 3-tier project with volumes moves from devcloud-a to
devcloud-b warm: ``mw-db`` boots from a volume and has two data volumes;
``mw-app`` boots from the image and has one.  The guests write between
rounds and after the last one (``overcloud-devcloud guest write``); every
destination volume must end with the source's final bytes, the source
running through every round and stopped only by the cut-over.
"""

import hashlib
import json
import os
import subprocess
import sysconfig

import openstack
import pytest

from overcloud_devcloud import guest
from overcloud_devcloud import scenario
from tests.functional import warm

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 400
PREFIX = 'mw'
MARK = warm.MARK
WAIT = 300
DEVCLOUD = os.path.join(sysconfig.get_path('scripts'), 'overcloud-devcloud')


@pytest.fixture(scope='module')
def bed(devcloud):
    """(source, destination, project, layout): the scenario with volumes
    in devcloud-a, with data the guests wrote."""
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    project = None
    try:
        for conn in (src, dst):
            scenario.delete(conn, PREFIX, wait=WAIT)
        project = scenario.build(src, PREFIX, volumes=True, wait=WAIT)
        for tier in ('db', 'app'):
            guest_write(project.servers[tier].id, 5, 'first-%s' % tier)
        yield src, dst, project, devcloud.layout
    finally:
        scenario.delete(dst, PREFIX, wait=WAIT)
        if project is not None:
            _delete_copies(dst, {v.id for found in project.volumes.values()
                                 for v in found})
        scenario.delete(src, PREFIX, wait=WAIT)
        src.close()
        dst.close()


def _delete_copies(conn, source_ids):
    """Destination copies of these source volumes a failed test left."""
    storage = conn.block_storage
    for volume in list(storage.volumes()):
        if (volume.metadata or {}).get('om_source_volume') in source_ids:
            storage.delete_volume(volume, ignore_missing=True)
            storage.wait_for_delete(volume, wait=WAIT)


def guest_write(server_id, percent, seed, volume_id=None):
    argv = [DEVCLOUD, 'guest', 'write', server_id, '--percent', str(percent),
            '--seed', seed, '-f', 'json']
    if volume_id:
        argv += ['--volume', volume_id]
    done = subprocess.run(argv, check=True, capture_output=True, text=True,
                          timeout=300)
    return json.loads(done.stdout)


# Site A and site B exporting the clouds' Cinder shares, a journal per test
# and the CLI calls (tests/functional/warm.py).
dtns = warm.dtns
journal = warm.journal
run = warm.run
migrate_warm = warm.migrate_warm
latest = warm.latest
rows = warm.rows
show = warm.show
copies = warm.copies
status = warm.status


def digest(path):
    sha = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(4 << 20), b''):
            sha.update(chunk)
    return sha.hexdigest()


def data_block(path, avoid=()):
    """The offset of the first 4 KiB block of ``path`` that holds data (a
    zero block would be repaired with a zero run, no data) and that is not
    in ``avoid``."""
    avoid = set(avoid)
    with open(path, 'rb') as handle:
        offset = 0
        for block in iter(lambda: handle.read(4096), b''):
            if block.strip(b'\0') and offset not in avoid:
                return offset
            offset += 4096
    raise AssertionError('%s holds no data' % path)


def test_warm_is_refused_with_a_transport_that_cannot_move_deltas(
        bed, journal):
    src, dst, project, _layout = bed
    code, _out, err = run(journal, 'migrate', 'mw-db', '--dest-cloud',
                          'devcloud-b', '--warm', '--transport', 'glance')
    assert code != 0
    assert 'the glance transport cannot move deltas; warm migration needs ' \
        'one that can: dtn' in err
    assert 'Traceback' not in err
    ours = {v.id for found in project.volumes.values() for v in found}
    assert not [v for v in dst.block_storage.volumes()
                if (v.metadata or {}).get('om_source_volume') in ours]
    assert status(src, project.servers['db'].id) == 'ACTIVE'


def test_a_volume_backed_server_moves_warm_through_kills(bed, dtns, journal):
    """Sync (killed mid-round, resumed), guest writes, a damaged
    destination block, another round, more writes, a cut-over killed after
    its last round and resumed: the destination boots on the source's
    final bytes, exactly one copy of each volume."""
    src, dst, project, layout = bed
    a, b = dtns
    db = project.servers['db']
    volumes = project.volumes['db']
    assert len(volumes) == 3     # the root volume, data and log

    # Round 1, killed after the first volume's sync, then resumed.
    code, _out, err = migrate_warm(journal, a, b, 'mw-db',
                                   fault='kill:after:sync')
    assert code == 137, err[-2000:]
    migration = latest(journal)
    assert status(src, db.id) == 'ACTIVE'
    code, out, err = run(journal, 'migration', 'resume', migration, '-f',
                         'json')
    assert code == 0, err
    assert rows(out, 'server')['mw-db']['Status'] == 'synced'
    assert show(journal, migration)['state'] == 'synced'
    assert status(src, db.id) == 'ACTIVE'
    made = copies(dst, migration)
    assert sorted(made) == sorted(v.id for v in volumes)
    assert all(len(c) == 1 and c[0].status == 'available'
               for c in made.values())
    assert not [s for s in dst.compute.servers() if s.name == 'mw-db']

    # The guest writes while it runs; a destination block is damaged.
    written = guest_write(db.id, 2, 'second')
    root_copy = made[volumes[0].id][0]
    offset = data_block(layout.volume_file('devcloud-a', volumes[0].id),
                        avoid=guest.pick_blocks(written['disk_bytes'], 2,
                                                'second', 4096))
    with open(layout.volume_file('devcloud-b', root_copy.id), 'r+b') as f:
        f.seek(offset)
        f.write(b'\xa5' * 4096)
    code, out, err = run(journal, 'migration', 'sync', migration, '-f',
                         'json')
    assert code == 0, err
    assert status(src, db.id) == 'ACTIVE'
    sync = {r['name']: r for r in show(journal, migration)['sync']}['mw-db']
    # rounds count per volume: the root volume's first round finished
    # before the kill, the resume ran it again, then this one
    assert sync['sync_rounds'] == 3
    # Only what changed crossed (and the damaged block, sent again).
    assert sync['last_changed_bytes'] == written['bytes_changed']
    assert written['bytes_changed'] < sync['last_sync_bytes'] <= \
        written['bytes_changed'] + 4096 * 4
    assert sync['cutover_copy_estimate'] >= 0

    # More writes after the last round; the cut-over is killed after its
    # last round and resumed.
    guest_write(db.id, 1, 'third')
    guest_write(db.id, 1, 'third-data', volume_id=volumes[1].id)
    code, _out, err = run(journal, 'migration', 'cutover', migration,
                          fault='kill:after:final-sync')
    assert code == 137, err[-2000:]
    code, out, err = run(journal, 'migration', 'resume', migration, '-f',
                         'json')
    assert code == 0, err
    server = rows(out, 'server')['mw-db']
    assert server['Status'] == 'done'
    assert show(journal, migration)['state'] == 'done'
    copy = dst.compute.get_server(server['Destination ID'])
    assert copy.status == 'ACTIVE'
    assert sorted(a['addr'] for v in copy.addresses.values() for a in v
                  if a['OS-EXT-IPS:type'] == 'fixed') == ['10.10.2.20']
    assert status(src, db.id) == 'SHUTOFF'
    made = copies(dst, migration)
    assert all(len(c) == 1 for c in made.values()), made
    attached = sorted(dst.compute.volume_attachments(copy),
                      key=lambda x: (len(x.device or ''), x.device or ''))
    assert [x.volume_id for x in attached] == [made[v.id][0].id
                                                for v in volumes]
    for volume in volumes:
        assert digest(layout.volume_file('devcloud-a', volume.id)) == \
            digest(layout.volume_file('devcloud-b', made[volume.id][0].id)), \
            volume.name

    # A second cut-over has nothing to do; rollback cleans the destination.
    code, _out, err = run(journal, 'migration', 'cutover', migration)
    assert code != 0 and 'is done: nothing is left to cut over' in err
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert copies(dst, migration) == {}
    assert status(src, db.id) == 'ACTIVE'


def test_an_image_booted_server_boots_from_a_synced_root_volume(
        bed, dtns, journal):
    """mw-app boots from the image and has a data volume: with
    --dest-boot-volume its root disk is synced into a volume from a Nova
    snapshot of the running server each round.  The cut-over of a round
    that never finished is refused; a volume detached between rounds stops
    the migration (and it goes on once it is back); the copy boots from
    the root volume on the source's final bytes."""
    src, dst, project, layout = bed
    a, b = dtns
    app = project.servers['app']
    data = project.volumes['app'][0]
    code, _out, err = migrate_warm(journal, a, b, 'mw-app',
                                   '--dest-boot-volume',
                                   fault='kill:before:sync')
    assert code == 137, err[-2000:]
    migration = latest(journal)
    code, _out, err = run(journal, 'migration', 'cutover', migration)
    assert code != 0
    assert "server 'mw-app' never finished a sync round; run `openstack " \
        'overcloud migration sync %s` first' % migration in err
    assert status(src, app.id) == 'ACTIVE'

    code, out, err = run(journal, 'migration', 'sync', migration, '-f',
                         'json')
    assert code == 0, err
    assert rows(out, 'server')['mw-app']['Status'] == 'synced'
    assert status(src, app.id) == 'ACTIVE'
    made = copies(dst, migration)
    root_key = 'root-%s' % app.id
    assert sorted(made) == sorted([root_key, data.id])
    # each round's snapshot is gone once it has served
    assert not [i for i in src.image.images(owner=src.current_project_id)
                if (i.properties or {}).get(MARK) == migration]

    # The source changes under the migration: it stops and says so.
    src.compute.delete_volume_attachment(app, data.id)
    src.block_storage.wait_for_status(data, 'available', failures=['error'],
                                      wait=WAIT)
    try:
        code, out, err = run(journal, 'migration', 'sync', migration, '-f',
                             'json')
        assert code != 0
        assert "Server 'mw-app' (%s) had its volumes changed (detached %s) " \
            'since warm migration %s began' % (app.id, data.id, migration) \
            in rows(out, 'server')['mw-app']['Status']
    finally:
        src.compute.create_volume_attachment(app, volume_id=data.id)
        src.block_storage.wait_for_status(data, 'in-use', failures=['error'],
                                          wait=WAIT)
    written = guest_write(app.id, 10, 'app-before')
    code, _out, err = run(journal, 'migration', 'sync', migration)
    assert code == 0, err
    written = guest_write(app.id, 10, 'app-after')
    guest_write(app.id, 3, 'app-data', volume_id=data.id)
    code, out, err = run(journal, 'migration', 'cutover', migration, '-f',
                         'json')
    assert code == 0, err
    server = rows(out, 'server')['mw-app']
    assert server['Status'] == 'done'
    copy = dst.compute.get_server(server['Destination ID'])
    assert copy.status == 'ACTIVE'
    assert status(src, app.id) == 'SHUTOFF'
    made = copies(dst, migration)
    assert all(len(c) == 1 for c in made.values()), made
    root = made[root_key][0]
    assert root.is_bootable and root.size >= 1
    attached = sorted(dst.compute.volume_attachments(copy),
                      key=lambda x: (len(x.device or ''), x.device or ''))
    assert [x.volume_id for x in attached] == [root.id, made[data.id][0].id]
    # The root volume holds the source disk's final bytes, zeros after.
    disk = _bytes_of(written['disk'])
    volume = _bytes_of(layout.volume_file('devcloud-b', root.id))
    assert volume[:len(disk)] == disk
    assert not volume[len(disk):].strip(b'\0')
    assert digest(layout.volume_file('devcloud-a', data.id)) == \
        digest(layout.volume_file('devcloud-b', made[data.id][0].id))
    # no snapshot left at the source; rollback cleans the destination
    assert not [i for i in src.image.images(owner=src.current_project_id)
                if (i.properties or {}).get(MARK) == migration]
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert copies(dst, migration) == {}
    assert not [s for s in dst.compute.servers() if s.name == 'mw-app']
    assert status(src, app.id) == 'ACTIVE'


def test_a_root_disk_read_in_the_instance_store_needs_no_snapshot(
        bed, dtns, journal):
    """mw-web has no volume: --dest-boot-volume with --dtn-source-disks
    syncs its root disk from the disk file the compute host keeps, running
    in the rounds, stopped at the cut-over; no snapshot is ever made.
    Rollback after a round leaves the source running; a cut-over after
    guest writes boots on the source's final bytes."""
    src, dst, project, layout = bed
    a, b = dtns
    web = project.servers['web']
    host = src.compute.get_server(web.id).compute_host
    disks = ('--dest-boot-volume', '--dtn-source-disks',
             os.path.join(a.disks[host], '{server}.disk'))
    code, out, err = migrate_warm(journal, a, b, 'mw-web', *disks)
    assert code == 0, err
    assert rows(out, 'server')['mw-web']['Status'] == 'synced'
    migration = latest(journal)
    assert list(copies(dst, migration)) == ['root-%s' % web.id]
    assert 'from the disk on %s' % host in err
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert copies(dst, migration) == {}
    assert not [s for s in dst.compute.servers() if s.name == 'mw-web']
    assert status(src, web.id) == 'ACTIVE'

    code, out, err = migrate_warm(journal, a, b, 'mw-web', *disks)
    assert code == 0, err
    migration = latest(journal)
    written = guest_write(web.id, 10, 'web-after')
    code, out, err = run(journal, 'migration', 'cutover', migration, '-f',
                         'json')
    assert code == 0, err
    server = rows(out, 'server')['mw-web']
    assert server['Status'] == 'done'
    assert 'snapshot' not in ' '.join(server['Phases'])
    assert dst.compute.get_server(server['Destination ID']).status == \
        'ACTIVE'
    assert status(src, web.id) == 'SHUTOFF'
    [root] = copies(dst, migration)['root-%s' % web.id]
    disk = _bytes_of(written['disk'])
    volume = _bytes_of(layout.volume_file('devcloud-b', root.id))
    assert volume[:len(disk)] == disk
    assert not volume[len(disk):].strip(b'\0')
    assert not [i for i in src.image.images(owner=src.current_project_id)
                if (i.properties or {}).get(MARK) == migration]
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert copies(dst, migration) == {}
    assert status(src, web.id) == 'ACTIVE'


def _bytes_of(path):
    with open(path, 'rb') as handle:
        return handle.read()
