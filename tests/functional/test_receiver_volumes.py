"""Volumes through `migrate --handoff` and `receiver run`, on devcloud.

The 3-tier project with volumes (``scenario --volumes``): ``rvv-db`` boots
from a volume and has ``rvv-db-data`` (standard) and ``rvv-db-log``
(fast) attached; ``rvv-app`` boots from the image and has
``rvv-app-data``.  Both are handed off from devcloud-a with
``--volume-type-map fast=rvv-gold``; a first ``receiver run --once`` is
killed while it uploads a volume's file (the OVERCLOUD_MIGRATE_FAULT hook),
a second one finishes.  One handoff serves every assertion: the items, one
of everything at the destination, the servers ACTIVE on their fixed IPs
with their volumes attached in order and byte-identical (``qemu-img
compare`` on the two clouds' shares).

The multi-attach refusal uses the same project's web server: a volume of a
multi-attach type attached to it makes ``migrate`` refuse at plan time.
"""

import hashlib
import json
import os

import pytest

from overcloud_devcloud import scenario
from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 150
PREFIX = 'rvv'
SERVERS = ['%s-db' % PREFIX, '%s-app' % PREFIX]
GOLD = '%s-gold' % PREFIX
MULTI = '%s-multi' % PREFIX
FIXED = {'db': ['10.10.2.20'], 'app': ['10.10.2.10']}
MARK = 'om_migration'
WAIT = 300


def _clean(conn):
    scenario.delete(conn, PREFIX, wait=WAIT)
    storage = conn.block_storage
    # Copies a failed run left (their metadata is the source's, marked).
    for volume in list(storage.volumes()):
        metadata = volume.metadata or {}
        if MARK in metadata and metadata.get('app') == PREFIX:
            helpers.delete_volume(conn, volume, WAIT)
    helpers.clean(conn, PREFIX)


@pytest.fixture(scope='module')
def project(devcloud):
    """The scenario with volumes in devcloud-a, with some data written
    into every volume; cleaned from both clouds after the module."""
    with helpers.volume_project(devcloud.layout, PREFIX, GOLD, _clean,
                                WAIT) as found:
        yield found


def receiver(watch, journal, fault=None):
    return helpers.overcloud(
        'receiver', 'run', '--watch', str(watch), '--dest-cloud',
        'devcloud-b', '--journal-url', journal, '--once', cloud=None,
        fault=fault)


@pytest.fixture(scope='module')
def handed_off(project, tmp_path_factory):
    """Hand db and app off; a receiver killed mid-volume; a second one
    finishes."""
    src, dst, built, layout = project
    work = tmp_path_factory.mktemp('receiver-volumes')
    watch = work / 'handoff'
    watch.mkdir()
    journal = helpers.journal_url(work / 'receiver.sqlite')
    handoff = helpers.overcloud(
        'migrate', *SERVERS, '--handoff', str(watch), '--transport',
        'sharedfs', '--volume-type-map', 'fast=%s' % GOLD, '-f', 'json',
        '--journal-url', helpers.journal_url(work / 'src.sqlite'))
    killed = receiver(watch, journal, fault='kill:during:volume-receive')
    second = receiver(watch, journal)
    return {'src': src, 'dst': dst, 'project': built, 'layout': layout,
            'watch': watch, 'handoff': handoff, 'killed': killed,
            'second': second}


def _items(handed_off):
    """{server name: (item directory, marker, status)} of the done items."""
    done = handed_off['watch'] / 'done'
    found = {}
    for name in os.listdir(done):
        marker = json.loads((done / name / 'COMPLETE').read_text())
        status = json.loads((done / name / 'status.json').read_text())
        found[marker['server_name']] = (done / name, marker, status)
    return found


def test_a_multiattach_volume_is_refused_at_plan_time(project, tmp_path,
                                                      cleanup):
    src, dst, built, _layout = project
    storage = src.block_storage
    kind = storage.find_type(MULTI) or storage.create_type(
        name=MULTI, extra_specs={'multiattach': '<is> True'})
    cleanup(lambda: storage.delete_type(kind))
    shared = storage.create_volume(name='%s-shared' % PREFIX, size=1,
                                   volume_type=MULTI)
    cleanup(lambda: helpers.delete_volume(src, shared, WAIT))
    storage.wait_for_status(shared, 'available', failures=['error'],
                            wait=WAIT, interval=helpers.POLL)
    web = built.servers['web']
    src.compute.create_volume_attachment(web, volume_id=shared.id)
    cleanup(lambda: _detach(src, web, shared))
    shared = storage.wait_for_status(shared, 'in-use', failures=['error'],
                                     wait=WAIT, interval=helpers.POLL)
    assert shared.is_multiattach
    before = helpers.dest_state(dst, PREFIX, keys=(
        'servers', 'images', 'ports', 'networks'))
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')

    code, out, err = helpers.overcloud(
        'migrate', web.name, '--dest-cloud', 'devcloud-b', '-f', 'json',
        '--journal-url', journal)

    assert code != 0
    assert ("Volume '%s-shared' (%s) of server '%s' is multi-attach; "
            'multi-attach volumes cannot be migrated' % (
                PREFIX, shared.id, web.name)) in err, err
    assert 'Traceback' not in err
    assert helpers.dest_state(dst, PREFIX, keys=(
        'servers', 'images', 'ports', 'networks')) == before
    code, out, err = helpers.overcloud('migration', 'list', '-f', 'json',
                                       '--journal-url', journal, cloud=None)
    assert code == 0 and json.loads(out) == [], err
    assert src.compute.get_server(web.id).status == 'ACTIVE'


def _detach(conn, server, volume):
    conn.compute.delete_volume_attachment(server, volume.id)
    conn.block_storage.wait_for_status(volume, 'available',
                                       failures=['error'], wait=WAIT,
                                       interval=helpers.POLL)


def test_each_item_holds_a_file_per_volume_and_the_source_keeps_nothing(
        handed_off):
    code, out, err = handed_off['handoff']
    assert code == 0, err
    rows = {r['Name']: r for r in json.loads(out)}
    assert {r['Status'] for r in rows.values()} == {'handed-off'}, rows
    assert {'volume-snapshot', 'volume-upload', 'volume-handoff',
            'handoff', 'volume-cleanup'} <= set(rows['rvv-db']['Phases'])
    built = handed_off['project']
    items = _items(handed_off)
    assert sorted(items) == sorted(SERVERS)
    for tier in ('db', 'app'):
        directory, marker, _status = items['%s-%s' % (PREFIX, tier)]
        volume_files = ['volume-%s.qcow2' % v.id
                        for v in built.volumes[tier]]
        image = ['image.raw'] if tier == 'app' else []
        assert sorted(os.listdir(directory)) == sorted(
            ['COMPLETE', 'plan.json', 'status.json'] + image + volume_files)
        assert marker['version'] == 2
        assert [v['file'] for v in marker['volumes']] == volume_files
        for entry in marker['volumes'] + ([marker['image']] if image
                                          else []):
            data = (directory / entry['file']).read_bytes()
            assert len(data) == entry['size'] > 0
            assert hashlib.sha512(data).hexdigest() == entry['sha512']
        plan = json.loads((directory / 'plan.json').read_text())
        assert sorted(v['id'] for v in plan['volumes']) == sorted(
            v.id for v in built.volumes[tier])
    # No snapshot, temporary volume or volume image is left at the source.
    src = handed_off['src']
    assert [s.id for s in src.block_storage.snapshots()
            if MARK in (s.metadata or {})
            and s.metadata.get('om_source_volume') in _source_ids(built)] \
        == []
    assert [v.id for v in src.block_storage.volumes()
            if (v.metadata or {}).get('om_source_volume')
            in _source_ids(built)] == []
    migration = next(iter(items.values()))[1]['migration_id']
    assert [i.id for i in src.image.images(owner=src.current_project_id)
            if (i.name or '').startswith('om-vol-%s-' % migration)] == []


def _source_ids(built):
    return {v.id for tier in ('db', 'app') for v in built.volumes[tier]}


def _copies(handed_off):
    """{source volume id: [destination copies]} the receiver made."""
    ours = {status['receiver_migration_id']
            for _d, _m, status in _items(handed_off).values()}
    copies = {}
    for volume in handed_off['dst'].block_storage.volumes():
        metadata = volume.metadata or {}
        if metadata.get(MARK) in ours:
            copies.setdefault(metadata['om_source_volume'], []).append(volume)
    return copies, ours


def test_a_receiver_killed_mid_volume_then_rerun_makes_one_of_everything(
        handed_off):
    code, _out, err = handed_off['killed']
    assert code == 137, 'the fault hook did not fire: %s' % err[-3000:]
    code, _out, err = handed_off['second']
    assert code == 0, err[-3000:]
    dst, built = handed_off['dst'], handed_off['project']
    copies, ours = _copies(handed_off)
    assert sorted(copies) == sorted(_source_ids(built))
    assert all(len(found) == 1 for found in copies.values()), copies
    state = helpers.dest_state(dst, PREFIX, keys=('servers', 'ports'))
    assert state == {'servers': sorted(SERVERS),
                     'ports': ['%s-port' % s for s in sorted(SERVERS)]}
    # Only the app's boot image stays; no volume image is left.
    images = [i for i in dst.image.images(owner=dst.current_project_id)
              if (i.properties or {}).get(MARK) in ours]
    assert [i.properties.get('om_source_volume') for i in images] == [None]


def test_servers_are_active_with_their_volumes_byte_identical_in_order(
        handed_off):
    dst, built = handed_off['dst'], handed_off['project']
    copies, _ours = _copies(handed_off)
    items = _items(handed_off)
    for tier in ('db', 'app'):
        status = items['%s-%s' % (PREFIX, tier)][2]
        assert status['state'] == 'done', status
        helpers.check_copy_with_volumes(
            dst, handed_off['layout'], status['dest_server_id'], FIXED[tier],
            built.volumes[tier], {v: found[0].id
                                  for v, found in copies.items()},
            {'fast': GOLD})
