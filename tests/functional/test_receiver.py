"""The Receiver on devcloud: `migrate --handoff` from devcloud-a into a
directory watched by `receiver run` for devcloud-b.

One handoff of the 3-tier project serves the main assertions: the first
receiver is killed mid-item (the OVERCLOUD_MIGRATE_FAULT hook, not a
sleep), a second one finishes every item, and the servers are ACTIVE in
devcloud-b on their fixed IPs with exactly one image, port and server
each. Items made from a finished one then prove that a missing marker, a
truncated plan or image, a plan that fails validation and a hash mismatch
are never acted on (nothing is left in Glance, Nova or Neutron).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import openstack
import pytest

from overcloud_devcloud import scenario
from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 250
PREFIX = 'rv'
SERVERS = helpers.servers_of(PREFIX)
FIXED = {'rv-web': ['10.10.1.10'], 'rv-app': ['10.10.2.10'],
         'rv-db': ['10.10.2.20']}
#: how long to wait for the receiver to finish the three items (a bound on
#: a wait, not a timed assertion)
WAIT = 900


def openstack_cmd(*args, fault=None, cloud=None):
    return helpers.overcloud(*args, fault=fault, cloud=cloud)


def start_receiver(watch, journal, *extra, fault=None, log=None):
    return subprocess.Popen(
        [helpers.OPENSTACK, 'overcloud', 'receiver', 'run', '--watch',
         str(watch), '--dest-cloud', 'devcloud-b', '--journal-url', journal,
         *extra],
        stdout=subprocess.DEVNULL, stderr=log, env=_env(fault))


def _env(fault=None):
    env = dict(os.environ)
    for name in helpers.OWN_ENV:
        env.pop(name, None)
    if fault:
        env['OVERCLOUD_MIGRATE_FAULT'] = fault
    return env


def dest_state(dst):
    """Servers, images, ports and networks of the scenario at the
    destination."""
    return helpers.dest_state(dst, PREFIX, keys=(
        'servers', 'images', 'ports', 'networks'))


def status_rows(watch):
    code, out, err = openstack_cmd('receiver', 'status', '--watch',
                                   str(watch), '-f', 'json')
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope='module')
def handed_off(devcloud, tmp_path_factory):
    """Hand the 3-tier project off; kill the first receiver mid-item; a
    second receiver finishes. Yields what the tests look at."""
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    for conn in (src, dst):
        helpers.clean(conn, PREFIX)
    work = tmp_path_factory.mktemp('receiver')
    watch = work / 'handoff'
    watch.mkdir()
    journal = helpers.journal_url(work / 'receiver.sqlite')
    log_path = work / 'receiver.log'
    try:
        project = scenario.build(src, PREFIX)
        with open(log_path, 'ab') as log:
            first = start_receiver(watch, journal, log=log,
                                   fault='kill:during:upload')
            try:
                code, out, err = openstack_cmd(
                    'migrate', *SERVERS, '--handoff', str(watch),
                    '--transport', 'sharedfs', '-f', 'json',
                    '--journal-url', helpers.journal_url(work / 'src.sqlite'),
                    cloud='devcloud-a')
                killed = first.wait(timeout=WAIT)
            finally:
                if first.poll() is None:
                    first.kill()
                    first.wait()
            after_kill = dest_state(dst)
            second = start_receiver(watch, journal, log=log)
            try:
                deadline = time.monotonic() + WAIT
                while (len(os.listdir(watch / 'done'))
                       + len(os.listdir(watch / 'failed')) < len(SERVERS)
                       and second.poll() is None
                       and time.monotonic() < deadline):
                    time.sleep(0.2)
                rows = status_rows(watch)
            finally:
                second.send_signal(signal.SIGTERM)
                stopped = second.wait(timeout=WAIT)
        yield {'src': src, 'dst': dst, 'project': project, 'watch': watch,
               'journal': journal, 'handoff': (code, out, err),
               'killed': killed, 'after_kill': after_kill,
               'rows': rows, 'stopped': stopped,
               'log': log_path.read_text()}
    finally:
        for conn in (dst, src):
            helpers.clean(conn, PREFIX)
        src.close()
        dst.close()


def test_handoff_writes_one_complete_item_per_server(handed_off):
    code, out, err = handed_off['handoff']
    assert code == 0, err
    rows = {r['Name']: r for r in json.loads(out)}
    assert set(rows) == set(SERVERS)
    for row in rows.values():
        assert row['Status'] == 'handed-off', row
        assert row['Action'] == 'handoff'
        assert row['Bytes'] > 0
        assert {'stop', 'snapshot', 'handoff'} <= set(row['Phases'])
    # the item names the rows give are the ones the receiver took
    taken = sorted(os.listdir(handed_off['watch'] / 'done'))
    assert taken == sorted(r['Destination ID'] for r in rows.values())
    for name in taken:
        item = handed_off['watch'] / 'done' / name
        files = sorted(os.listdir(item))
        assert files == ['COMPLETE', 'image.raw', 'plan.json',
                         'status.json'], files
        marker = json.loads((item / 'COMPLETE').read_text())
        data = (item / 'plan.json').read_bytes()
        assert marker['plan']['sha512'] == hashlib.sha512(data).hexdigest()
        assert marker['image']['size'] == (item / 'image.raw').stat().st_size


def test_a_handoff_dry_run_prints_the_rows_of_a_real_run(handed_off,
                                                        tmp_path):
    """It failed with "Row has incorrect number of values" when the rows
    were built by position; nothing is written into the directory."""
    watch = tmp_path / 'dry'
    watch.mkdir()
    code, out, err = openstack_cmd(
        'migrate', *SERVERS, '--handoff', str(watch), '--transport',
        'sharedfs', '--dry-run', '-f', 'json', '--journal-url',
        'sqlite:///%s' % (tmp_path / 'dry.sqlite'), cloud='devcloud-a')
    assert code == 0, err
    rows = json.loads(out)
    real = json.loads(handed_off['handoff'][1])
    assert [list(r) for r in rows] == [list(r) for r in real]
    assert {r['Name']: (r['Action'], r['Status'], r['Destination ID'])
            for r in rows} == {name: ('handoff', 'planned', str(watch))
                               for name in SERVERS}
    assert os.listdir(watch) == []


def test_killed_receiver_restarts_and_finishes_with_one_of_everything(
        handed_off):
    assert handed_off['killed'] == 137, handed_off['log'][-3000:]
    # the first receiver had begun: the network world was there
    assert handed_off['after_kill']['networks'], handed_off['after_kill']
    assert handed_off['stopped'] == 0, handed_off['log'][-3000:]
    state = dest_state(handed_off['dst'])
    assert state['servers'] == sorted(SERVERS), handed_off['log'][-3000:]
    assert len(state['images']) == len(SERVERS), state
    assert state['ports'] == sorted('%s-port' % s for s in SERVERS)
    assert 'Stopped' in handed_off['log']


def test_servers_are_active_on_their_fixed_ips(handed_off):
    dst = handed_off['dst']
    rows = {r['Server']: r for r in handed_off['rows']}
    assert set(rows) == set(SERVERS)
    for name, ips in FIXED.items():
        row = rows[name]
        assert row['State'] == 'done', row
        assert row['Item'].startswith('done/')
        server = dst.compute.get_server(row['Destination ID'])
        assert server.status == 'ACTIVE'
        fixed = sorted(a['addr'] for v in server.addresses.values()
                       for a in v if a['OS-EXT-IPS:type'] == 'fixed')
        assert fixed == ips
        assert server.metadata == {'tier': name.split('-')[1],
                                   'app': PREFIX}
        status = json.loads((handed_off['watch'] / row['Item'] /
                             'status.json').read_text())
        assert status['state'] == 'done' and status['reason'] is None
        assert status['dest_server_id'] == server.id
        assert 'password' not in json.dumps(status).lower()
    web = dst.compute.get_server(rows['rv-web']['Destination ID'])
    floating = [a['addr'] for v in web.addresses.values() for a in v
                if a['OS-EXT-IPS:type'] == 'floating']
    assert floating == [handed_off['project'].floating_ip
                        .floating_ip_address]


def test_a_server_already_at_the_destination_is_not_moved_again(
        handed_off, tmp_path):
    dst = handed_off['dst']
    before = dest_state(dst)
    web = next(r for r in handed_off['rows'] if r['Server'] == 'rv-web')
    watch = tmp_path / 'again'
    watch.mkdir()
    # the same server handed off again (another migration, another item)
    shutil.copytree(handed_off['watch'] / web['Item'], watch / 'again-web')
    (watch / 'again-web' / 'status.json').unlink()
    code, _out, err = openstack_cmd(
        'receiver', 'run', '--watch', str(watch), '--dest-cloud',
        'devcloud-b', '--journal-url', handed_off['journal'], '--once')
    assert code == 0, err
    assert 'already runs at the destination' in err
    [row] = status_rows(watch)
    assert row['State'] == 'done'
    assert row['Destination ID'] == web['Destination ID']
    assert dest_state(dst) == before


def _bad_item(template, root, name, change):
    """A copy of a finished item (no status), changed by ``change``."""
    item = root / name
    shutil.copytree(template, item)
    (item / 'status.json').unlink()
    change(item)
    return item


def _rewrite_marker(item, plan=None, image=None):
    marker = json.loads((item / 'COMPLETE').read_text())
    if plan is not None:
        marker['plan'].update(size=len(plan),
                              sha512=hashlib.sha512(plan).hexdigest())
    if image is not None:
        marker['image'].update(size=len(image),
                               sha512=hashlib.sha512(image).hexdigest())
    (item / 'COMPLETE').write_text(json.dumps(marker))


def test_bad_items_are_never_acted_on(handed_off, tmp_path):
    dst = handed_off['dst']
    done = handed_off['watch'] / 'done'
    template = done / next(r['Item'] for r in handed_off['rows']
                           if r['Server'] == 'rv-db').split('/', 1)[1]
    # The server and its image are deleted so that nothing is reused.
    for server in [s for s in dst.compute.servers() if s.name == 'rv-db']:
        dst.compute.delete_server(server)
        dst.compute.wait_for_delete(server)
    for image in dst.image.images(owner=dst.current_project_id):
        if image.name.startswith('om-rv-db-'):
            dst.image.delete_image(image)
    before = dest_state(dst)
    watch = tmp_path / 'bad'
    watch.mkdir()

    def no_marker(item):
        (item / 'COMPLETE').unlink()

    def truncated_plan(item):
        data = (item / 'plan.json').read_bytes()
        (item / 'plan.json').write_bytes(data[:len(data) // 2])

    def half_image(item):
        data = (item / 'image.raw').read_bytes()
        (item / 'image.raw').write_bytes(data[:len(data) // 2])

    def invalid_plan(item):
        plan = json.loads((item / 'plan.json').read_text())
        plan['servers'][0]['flavor_id'] = 'no-such-flavor'
        data = json.dumps(plan).encode()
        (item / 'plan.json').write_bytes(data)
        _rewrite_marker(item, plan=data)

    def hash_mismatch(item):
        data = bytearray((item / 'image.raw').read_bytes())
        data[len(data) // 2] ^= 0xFF
        (item / 'image.raw').write_bytes(bytes(data))

    for name, change in (('bad-no-marker', no_marker),
                         ('bad-truncated-plan', truncated_plan),
                         ('bad-half-image', half_image),
                         ('bad-invalid-plan', invalid_plan),
                         ('bad-hash', hash_mismatch)):
        _bad_item(template, watch, name, change)
    code, _out, err = openstack_cmd(
        'receiver', 'run', '--watch', str(watch), '--dest-cloud',
        'devcloud-b', '--journal-url', handed_off['journal'], '--once')
    assert code != 0
    assert '4 of 4 items failed' in err, err
    rows = {r['Item']: r for r in status_rows(watch)}
    assert rows['bad-no-marker']['State'] == 'incomplete'
    assert os.path.exists(watch / 'bad-no-marker' / 'plan.json')
    reasons = {name: rows['failed/%s' % name]['Reason']
               for name in ('bad-truncated-plan', 'bad-half-image',
                            'bad-invalid-plan', 'bad-hash')}
    for name, row in rows.items():
        if name.startswith('failed/'):
            assert row['State'] == 'failed' and row['Server'] == 'rv-db'
    assert 'plan.json' in reasons['bad-truncated-plan']
    assert 'truncated or damaged' in reasons['bad-truncated-plan']
    assert 'image.raw' in reasons['bad-half-image']
    assert 'flavor_id' in reasons['bad-invalid-plan']
    assert 'sha512' in reasons['bad-hash'] and 'Uploading the image' in \
        reasons['bad-hash']
    # Nothing was made (the hash mismatch's image was deleted again).
    assert dest_state(dst) == before


def test_an_interrupted_handoff_resumes_and_rolls_back(handed_off,
                                                       tmp_path):
    src = handed_off['src']
    watch = tmp_path / 'handoff'
    watch.mkdir()
    journal = helpers.journal_url(tmp_path / 'src.sqlite')
    code, _out, err = openstack_cmd(
        'migrate', 'rv-web', '--handoff', str(watch), '--transport',
        'sharedfs', '--journal-url', journal, cloud='devcloud-a',
        fault='kill:after:snapshot')
    assert code == 137, err
    # the snapshot is there, the item is not (not even half of it)
    assert os.listdir(watch) == []
    code, out, err = openstack_cmd('migration', 'list', '--journal-url',
                                   journal, '-f', 'json')
    migration = json.loads(out)[-1]['ID']
    code, out, err = openstack_cmd('migration', 'resume', migration,
                                   '--journal-url', journal, '-f', 'json',
                                   cloud='devcloud-a')
    assert code == 0, err
    [row] = [r for r in json.loads(out) if r['Type'] == 'server']
    assert row['Status'] == 'handed-off'
    assert os.listdir(watch) == [row['Destination ID']]
    assert sorted(os.listdir(watch / row['Destination ID'])) == [
        'COMPLETE', 'image.raw', 'plan.json']

    def snapshots():
        return [i for i in src.image.images(owner=src.current_project_id)
                if (i.properties or {}).get('om_migration') == migration]

    assert len(snapshots()) == 1
    code, _out, err = openstack_cmd('migration', 'rollback', migration,
                                    '--journal-url', journal,
                                    cloud='devcloud-a')
    assert code == 0, err
    assert snapshots() == []
