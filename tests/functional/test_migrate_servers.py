"""`openstack overcloud migrate`, part 2, on devcloud: servers really move.

The 3-tier project moves from devcloud-a to devcloud-b; a kill -9 in each
phase (through the OVERCLOUD_MIGRATE_FAULT hook, not sleeps) is finished by
`migration resume` with exactly one of everything (in
test_migrate_servers_kills.py, with a scenario of its own, so that the two
halves run side by side); `migration rollback` leaves the destination as
it was; a byte corrupted in transit is caught by the hash check and the
image sent again.
"""

import json

import pytest

from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 380
PREFIX = 'ms'
SERVERS = helpers.servers_of(PREFIX)


def run(journal, *args, fault=None, cloud='devcloud-a'):
    return helpers.overcloud(*args, journal=journal, fault=fault, cloud=cloud)


def migrate(journal, *extra, fault=None, servers=SERVERS):
    return run(journal, 'migrate', *servers, '--dest-cloud', 'devcloud-b',
               '-f', 'json', *extra, fault=fault)


def server_rows(stdout):
    return {r['Name']: r for r in json.loads(stdout) if r['Type'] == 'server'}


def latest_migration(journal):
    code, out, err = run(journal, 'migration', 'list', '-f', 'json')
    assert code == 0, err
    return json.loads(out)[-1]['ID']


def dest_state(dst):
    """What a migration leaves at the destination: servers, images, ports."""
    return helpers.dest_state(dst, PREFIX)


def source_snapshots(src, migration):
    """Images of ``migration`` in the source Glance (by its own marker)."""
    return [i.id for i in src.image.images(owner=src.current_project_id)
            if (i.properties or {}).get('om_migration') == migration]


def snapshot_of(src, image_id):
    return src.image.download_image(src.image.get_image(image_id)).content


@pytest.fixture
def journal(tmp_path):
    return helpers.journal_url(tmp_path / 'journal.sqlite')


def test_three_tier_moves_active_on_its_fixed_ips_byte_identical(
        clouds, journal):
    src, dst, project = clouds
    # Kept here, to compare bytes with; the default deletes them.
    code, out, err = migrate(journal, '--parallel', '3',
                             '--keep-source-snapshots')
    assert code == 0, err
    rows = server_rows(out)
    assert set(rows) == set(SERVERS)
    for name, row in rows.items():
        assert row['Status'] == 'done', row
        assert row['Bytes'] > 0 and row['MB/s'] > 0
        assert 0 < row['Downtime (s)'] < 600
        assert {'stop', 'snapshot', 'transfer', 'boot', 'verify'} <= \
            set(row['Phases'])
    expected = {'ms-web': ['10.10.1.10'], 'ms-app': ['10.10.2.10'],
                'ms-db': ['10.10.2.20']}
    migration = latest_migration(journal)
    for name, ips in expected.items():
        server = dst.compute.get_server(rows[name]['Destination ID'])
        assert server.status == 'ACTIVE'
        fixed = sorted(a['addr'] for v in server.addresses.values()
                       for a in v if a['OS-EXT-IPS:type'] == 'fixed')
        assert fixed == ips
        assert server.metadata == {'tier': name.split('-')[1],
                                   'app': PREFIX}
        assert server.key_name == 'ms-key'
        # the destination image holds exactly the bytes of the snapshot
        dest_image = dst.image.get_image(server.image['id'])
        snap_id = dest_image.properties['om_source_image']
        assert dest_image.properties['om_migration'] == migration
        assert dst.image.download_image(dest_image).content == \
            snapshot_of(src, snap_id)
        # the source is kept, stopped
        assert src.compute.get_server(project.servers[name.split('-')[1]]
                                      .id).status == 'SHUTOFF'
    web = dst.compute.get_server(rows['ms-web']['Destination ID'])
    floating = [a['addr'] for v in web.addresses.values() for a in v
                if a['OS-EXT-IPS:type'] == 'floating']
    assert floating == [project.floating_ip.floating_ip_address]
    assert len(source_snapshots(src, migration)) == 3

    # A second run does nothing.
    before = dest_state(dst)
    code, out, err = migrate(journal)
    assert code == 0, err
    assert dest_state(dst) == before
    assert all(r['Status'] == 'done' and not r['Bytes']
               for r in server_rows(out).values())

    # rollback leaves the destination as it was and restarts the sources
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst) == {'servers': [], 'images': [], 'ports': []}
    assert not [n for n in dst.network.networks()
                if n.name.startswith(PREFIX + '-')]
    # ... and removes the snapshots it kept at the source
    assert source_snapshots(src, migration) == []
    for server in project.servers.values():
        assert src.compute.get_server(server.id).status == 'ACTIVE'


def test_a_verified_server_leaves_no_snapshot_in_the_source(clouds,
                                                            journal):
    src, dst, _project = clouds
    code, out, err = migrate(journal, servers=['ms-web'])
    assert code == 0, err
    assert server_rows(out)['ms-web']['Status'] == 'done'
    assert 'deleted 1 snapshot in the source Glance' in err
    migration = latest_migration(journal)
    assert source_snapshots(src, migration) == []
    # The destination image is its own copy, untouched by the cleanup.
    assert len(dest_state(dst)['images']) == 1
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


def test_a_corrupted_byte_is_caught_and_the_image_sent_again(clouds,
                                                             journal):
    src, dst, project = clouds
    code, out, err = migrate(journal, '--keep-source-snapshots',
                             fault='transfer:corrupt', servers=['ms-web'])
    assert code == 0, err
    assert server_rows(out)['ms-web']['Status'] == 'done'
    assert 'hash mismatch' in err and 'sending the image again' in err
    migration = latest_migration(journal)
    code, out, _err = run(journal, 'migration', 'show', migration, '-f',
                          'json')
    assert any('arrived damaged' in e for e in json.loads(out)['events'])
    server = next(s for s in dst.compute.servers() if s.name == 'ms-web')
    image = dst.image.get_image(server.image['id'])
    assert dst.image.download_image(image).content == snapshot_of(
        src, image.properties['om_source_image'])
    assert len(dest_state(dst)['images']) == 1
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


def test_unknown_transport_lists_the_valid_ones(clouds, journal):
    _src, dst, _project = clouds
    before = dest_state(dst)
    code, _out, err = migrate(journal, '--transport', 'pigeon')
    assert code != 0
    assert "Unknown transport 'pigeon'" in err and 'glance' in err
    assert 'Traceback' not in err
    assert dest_state(dst) == before


def test_a_failing_server_is_rolled_back_and_its_source_restarted(
        clouds, journal):
    src, dst, project = clouds
    code, out, err = migrate(journal, '--timeout', '60',
                             fault='kill:before:verify', servers=['ms-db'])
    assert code == 137
    migration = latest_migration(journal)
    # Abort the interrupted migration: resuming it then reverts the flow.
    code, _out, err = run(journal, 'migration', 'abort', migration)
    assert code == 0, err
    code, out, err = run(journal, 'migration', 'resume', migration,
                         '-f', 'json')
    assert code != 0
    assert '1 of 1 servers failed' in err
    row = server_rows(out)['ms-db']
    assert row['Status'].startswith('failed') and 'aborted' in row['Status']
    assert dest_state(dst)['servers'] == []
    assert dest_state(dst)['images'] == []
    assert src.compute.get_server(project.servers['db'].id).status == \
        'ACTIVE'
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst) == {'servers': [], 'images': [], 'ports': []}
