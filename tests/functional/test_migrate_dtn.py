"""`openstack overcloud migrate --transport dtn` on devcloud, over real DTNs.

Two ``globus-gridftp-server`` processes and two ``overcloud-dtn-api``
services (one per site, shared tokens, ephemeral ports) stand for the
seed's DTNs; their export directories stand for the NFS mounts on the
migrating host. The 3-tier project moves from devcloud-a to devcloud-b:
each snapshot is staged in site A's directory, crosses to site B's by a
third-party GridFTP transfer that site A's DTN service runs, and is
uploaded to devcloud-b from there.

Missing GridFTP packages make these tests FAIL with the install command.
"""

import json
import os

import pytest

from tests.functional import helpers
from tests.functional import test_dtn_gridftp as gridftp_bed

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 360
PREFIX = 'md'
SERVERS = helpers.servers_of(PREFIX)
PROBE = '.overcloud-migrate-probe-'


@pytest.fixture(scope='module')
def dtns():
    """Site A and site B: GridFTP server + DTN service each; A knows B."""
    gridftp = gridftp_bed._need('globus-gridftp-server',
                                'globus-gridftp-server-progs')
    gridftp_bed._need('globus-url-copy', 'globus-gass-copy-progs')

    def prepare(procs, base, name):
        os.chmod(base, 0o755)   # the anonymous GridFTP user (nobody) traverses
        export = os.path.join(base, name, 'export')
        os.makedirs(export)
        os.chmod(os.path.join(base, name), 0o755)
        os.chmod(export, 0o777)
        site = gridftp_bed.Site(name, export, gridftp_bed._free_port())
        gridftp_bed.start_gridftp(procs, gridftp, site.gridftp_port,
                                  export, base, name)
        return site, []

    with gridftp_bed.dtn_pair('migrate-dtn-', prepare,
                              lambda b: {'data': b.export}) as pair:
        yield pair


@pytest.fixture
def journal(tmp_path):
    return tmp_path / 'journal.sqlite'


def run(journal, *args, fault=None):
    return helpers.overcloud(*args, journal=helpers.journal_url(journal),
                             fault=fault)


def migrate_dtn(journal, a, b, *extra, dest_url=None, servers=SERVERS,
                fault=None, mover='gridftp'):
    return run(journal, 'migrate', *servers, '--dest-cloud', 'devcloud-b',
               '--transport', 'dtn', '--dtn-source', a.url,
               '--dtn-dest', dest_url or b.url,
               '--dtn-source-dir', a.export, '--dtn-dest-dir', b.export,
               '--dtn-source-token-file', a.token_file,
               '--dtn-dest-token-file', b.token_file,
               '--dtn-mover', mover, '-f', 'json',
               # the tests compare each copy with its source snapshot
               '--keep-source-snapshots', *extra, fault=fault)


def dest_state(dst):
    return helpers.dest_state(dst, PREFIX, keys=(
        'servers', 'images', 'networks'))


def test_servers_cross_over_gridftp_between_two_dtns(clouds, dtns, journal):
    src, dst, project = clouds
    a, b = dtns
    code, out, err = migrate_dtn(journal, a, b, '--parallel', '3')
    assert code == 0, err
    rows = {r['Name']: r for r in json.loads(out) if r['Type'] == 'server'}
    assert set(rows) == set(SERVERS)
    expected = {'md-web': ['10.10.1.10'], 'md-app': ['10.10.2.10'],
                'md-db': ['10.10.2.20']}
    snapshots = {}
    for name, ips in expected.items():
        assert rows[name]['Status'] == 'done', rows[name]
        server = dst.compute.get_server(rows[name]['Destination ID'])
        assert server.status == 'ACTIVE'
        fixed = sorted(x['addr'] for v in server.addresses.values()
                       for x in v if x['OS-EXT-IPS:type'] == 'fixed')
        assert fixed == ips
        # byte-identical to the source snapshot, sha512 included
        dest_image = dst.image.get_image(server.image['id'])
        snap = src.image.get_image(dest_image.properties['om_source_image'])
        snapshots[name] = snap.id
        assert dest_image.hash_algo == snap.hash_algo == 'sha512'
        assert dest_image.hash_value == snap.hash_value
        assert dst.image.download_image(dest_image).content == \
            src.image.download_image(snap).content

    # site A's DTN service ran one gridftp transfer per image, and logged it
    client = a.client()
    images = [t for t in client.transfers()
              if not os.path.basename(t['source']['path']).startswith(PROBE)]
    assert sorted(os.path.basename(t['dest']['path']) for t in images) == \
        sorted('%s.img' % s for s in snapshots.values())
    assert {(t['mover'], t['state'], t['source']['node'],
             t['dest']['node']) for t in images} == {
        ('gridftp', 'done', 'site-a', 'site-b')}
    log = {r['file']: r for r in client.log(node='site-b')}
    for snap_id in snapshots.values():
        row = log[os.path.join(b.export, snap_id + '.img')]
        assert (row['source'], row['destination']) == ('site-a', 'site-b')
        assert row['mb'] > 0
    # staged copies removed after the verified uploads
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []
    # the tokens are nowhere in the output or the journal
    with open(journal, 'rb') as handle:
        recorded = handle.read()
    for site in (a, b):
        assert site.token not in err and site.token not in out
        assert site.token.encode() not in recorded
    assert a.token_file.encode() in recorded   # resume can read it again

    migration = json.loads(run(journal, 'migration', 'list', '-f',
                               'json')[1])[-1]['ID']
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst) == {'servers': [], 'images': [], 'networks': []}


def test_unreachable_dtn_fails_before_anything_is_created(clouds, dtns,
                                                          journal):
    _src, dst, _project = clouds
    a, b = dtns
    before = dest_state(dst)
    closed = 'http://127.0.0.1:%d' % gridftp_bed._free_port()
    code, out, err = migrate_dtn(journal, a, b, dest_url=closed)
    assert code != 0
    assert ('Cannot use the destination DTN: the DTN service at %s is '
            'unreachable' % closed) in err
    assert 'nothing was changed' in err
    assert 'Traceback' not in err and out == ''
    assert dest_state(dst) == before
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []


def test_a_byte_corrupted_on_the_way_is_caught_and_sent_again(clouds, dtns,
                                                              journal):
    """The fault hook flips a byte of the staged copy; the upload from the
    destination DTN catches it, the image crosses again and arrives
    intact."""
    src, dst, _project = clouds
    a, b = dtns
    code, out, err = migrate_dtn(journal, a, b, servers=['md-web'],
                                 fault='transfer:corrupt')
    assert code == 0, err
    assert 'hash mismatch' in err and 'sending the image again' in err
    [row] = [r for r in json.loads(out) if r['Type'] == 'server']
    server = dst.compute.get_server(row['Destination ID'])
    assert server.status == 'ACTIVE'
    image = dst.image.get_image(server.image['id'])
    snap = src.image.get_image(image.properties['om_source_image'])
    assert dst.image.download_image(image).content == \
        src.image.download_image(snap).content
    assert len(dest_state(dst)['images']) == 1
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []
    migration = json.loads(run(journal, 'migration', 'list', '-f',
                               'json')[1])[-1]['ID']
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


def test_killed_before_the_transfer_then_resumed_with_the_journaled_options(
        clouds, dtns, journal):
    """`migration resume` rebuilds the dtn transport from the journal (token
    file names, not tokens) and finishes the move."""
    src, dst, _project = clouds
    a, b = dtns
    code, _out, _err = migrate_dtn(journal, a, b, servers=['md-db'],
                                   fault='kill:before:transfer')
    assert code == 137, 'the fault hook did not fire'
    migration = json.loads(run(journal, 'migration', 'list', '-f',
                               'json')[1])[-1]['ID']
    code, out, err = run(journal, 'migration', 'resume', migration, '-f',
                         'json')
    assert code == 0, err
    [row] = [r for r in json.loads(out) if r['Type'] == 'server']
    assert row['Status'] == 'done'
    server = dst.compute.get_server(row['Destination ID'])
    assert server.status == 'ACTIVE'
    image = dst.image.get_image(server.image['id'])
    snap = src.image.get_image(image.properties['om_source_image'])
    assert dst.image.download_image(image).content == \
        src.image.download_image(snap).content
    with open(journal, 'rb') as handle:
        recorded = handle.read()
    assert a.token.encode() not in recorded
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
    assert dest_state(dst)['servers'] == []


def test_the_builtin_mover_and_no_token_even_in_debug_output(clouds, dtns,
                                                             journal):
    src, dst, _project = clouds
    a, b = dtns
    code, out, err = run(journal, '--debug', 'migrate', 'md-app',
                         '--dest-cloud', 'devcloud-b', '--transport', 'dtn',
                         '--dtn-source', a.url, '--dtn-dest', b.url,
                         '--dtn-source-dir', a.export,
                         '--dtn-dest-dir', b.export,
                         '--dtn-source-token-file', a.token_file,
                         '--dtn-dest-token-file', b.token_file,
                         '--dtn-mover', 'builtin', '--dtn-streams', '2',
                         '--keep-source-snapshots', '-f', 'json')
    assert code == 0, err[-3000:]
    # debug logging is on, the driver's own log lines included
    assert 'START with options' in err and 'DTN transfer' in err
    for site in (a, b):
        assert site.token not in err and site.token not in out
    [row] = [r for r in json.loads(out) if r['Type'] == 'server']
    server = dst.compute.get_server(row['Destination ID'])
    assert server.status == 'ACTIVE'
    image = dst.image.get_image(server.image['id'])
    snap_id = image.properties['om_source_image']
    assert dst.image.download_image(image).content == \
        src.image.download_image(src.image.get_image(snap_id)).content
    [moved] = [t for t in a.client().transfers()
               if t['dest']['path'].endswith(snap_id + '.img')]
    assert (moved['mover'], moved['streams'], moved['state']) == (
        'builtin', 2, 'done')
    migration = json.loads(run(journal, 'migration', 'list', '-f',
                               'json')[1])[-1]['ID']
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err
