"""The ``dtn`` driver against two real DTN services and a real image service.

Each site runs the real DTN WSGI application behind the real threaded
server and shared-token middleware (tests/unit/dtn/conftest.py); only the
mover is the local-copy test double there (GridFTP itself is covered by
tests/functional/test_dtn_gridftp.py and test_migrate_dtn.py). The images
come from and go to the real local HTTP image service of conftest.py.
"""

import hashlib
import logging
import os
import socket

import pytest

from overcloud_migrate.dtn import api
from overcloud_migrate.dtn import auth
from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers
from overcloud_migrate.transports import base
from overcloud_migrate.transports import dtn as dtn_transport
from tests.unit.dtn import conftest as dtn_conftest

TOKEN_A = 'site-a-token-0123456789abcdef'
TOKEN_B = 'site-b-token-fedcba9876543210'


class Site:
    def __init__(self, name, export, token, url, store):
        self.name = name
        self.export = export
        self.token = token
        self.url = url
        self.store = store

    def client(self):
        return dtn_client.DTNClient(self.url, token=self.token, timeout=10)


def _serve(tmp_path, name, export, peer, peer_export, token):
    store = store_mod.Store('sqlite:///%s' % (tmp_path / (name + '.sqlite')))
    store.upsert_local_node(name, '127.0.0.1', 1, 'ftp', None,
                            {'data': str(export)})
    store.add_node(peer, '127.0.0.1', gridftp_port=2,
                   exports={'data': str(peer_export)})
    manager = transfers.TransferManager(store)
    movers = transfers.MoverRegistry({
        'localcopy': dtn_conftest.LocalCopyMover(),
        'slowcopy': dtn_conftest.LocalCopyMover(delay=0.02),
        'unavailable': dtn_conftest.UnavailableMover()})
    app = api.create_app(store, manager, api.Config(
        local_node=name, default_mover='localcopy', movers=movers))
    server, thread = dtn_conftest.serve(auth.SharedTokenAuth(app, token))
    url = 'http://127.0.0.1:%d' % server.server_address[1]

    def stop():
        manager.shutdown()
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()
    return Site(name, export, token, url, store), stop


@pytest.fixture
def sites(tmp_path):
    export_a = tmp_path / 'site-a'
    export_b = tmp_path / 'site-b'
    export_a.mkdir()
    export_b.mkdir()
    a, stop_a = _serve(tmp_path, 'site-a', export_a, 'site-b', export_b,
                       TOKEN_A)
    b, stop_b = _serve(tmp_path, 'site-b', export_b, 'site-a', export_a,
                       TOKEN_B)
    for site in (a, b):
        token_file = tmp_path / (site.name + '.token')
        token_file.write_text(site.token + '\n')
        site.token_file = str(token_file)
    yield a, b
    stop_a()
    stop_b()


def driver(sites, **options):
    a, b = sites
    settings = dict(source_endpoint=a.url, dest_endpoint=b.url,
                    source_dir=str(a.export), dest_dir=str(b.export),
                    source_token_file=a.token_file,
                    dest_token_file=b.token_file, poll_interval=0.05)
    settings.update(options)
    return dtn_transport.DtnTransport(**settings)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_loaded_through_its_entry_point(sites):
    loaded = base.load('dtn', source_endpoint='http://dtn-a:22641')
    assert type(loaded) is dtn_transport.DtnTransport
    assert {'staging', 'resume', 'remote', 'third-party', 'deltas'} == \
        loaded.capabilities


def test_moves_the_image_verifies_it_and_cleans_up(sites, image,
                                                   image_server):
    a, b = sites
    seen = []
    result = driver(sites).transfer(image.source, image.dest,
                                    lambda done, total: seen.append(
                                        (done, total)))
    assert image_server.uploads['dst-0001'] == image.data
    assert result.bytes == len(image.data)
    assert result.sha512 == image.sha512
    # the bytes crossed through the source DTN service, which logged it
    rows = a.client().transfers()
    assert [(r['source']['node'], r['dest']['node'], r['state'])
            for r in rows] == [('site-a', 'site-b', 'done')]
    assert rows[0]['dest']['path'] == str(b.export / 'src-0001.img')
    log = a.client().log(file='src-0001.img')
    assert [(r['source'], r['destination']) for r in log] == [
        ('site-a', 'site-b')]
    # staged files removed after the verified upload
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []
    assert seen[-1] == (len(image.data), len(image.data))


def test_keep_leaves_both_copies(sites, image, image_server):
    a, b = sites
    driver(sites, keep=True).transfer(image.source, image.dest, None)
    for site in (a, b):
        assert (site.export / 'src-0001.img').read_bytes() == image.data
    assert oct((a.export / 'src-0001.img').stat().st_mode & 0o777) == '0o644'


def test_check_probes_through_the_dtns_and_leaves_nothing(sites):
    a, b = sites
    driver(sites).check(size=1024)
    assert os.listdir(a.export) == [] and os.listdir(b.export) == []
    rows = a.client().transfers()
    assert len(rows) == 1 and rows[0]['state'] == 'done'
    assert os.path.basename(rows[0]['source']['path']).startswith(
        '.overcloud-migrate-probe-')


def test_check_without_probe_starts_no_transfer(sites):
    a, _b = sites
    driver(sites, probe=False).check()
    assert a.client().transfers() == []


def test_unreachable_destination_dtn_is_named(sites):
    url = 'http://127.0.0.1:%d' % _free_port()
    with pytest.raises(base.PreflightError) as caught:
        driver(sites, dest_endpoint=url).check()
    message = str(caught.value)
    assert message.startswith('Cannot use the destination DTN: the DTN '
                              'service at %s is unreachable' % url)
    assert '\n' not in message and message.endswith('refused.')


def test_wrong_token_is_refused_before_any_transfer(sites, tmp_path):
    a, _b = sites
    wrong = tmp_path / 'wrong'
    wrong.write_text('not-the-token-of-site-a\n')
    with pytest.raises(base.PreflightError,
                       match='source DTN: the DTN service at .* answered '
                             '401'):
        driver(sites, source_token_file=str(wrong)).check()
    assert a.store.list_transfers() == []


def test_token_from_the_environment(sites, monkeypatch):
    a, b = sites
    monkeypatch.setenv(dtn_transport.TOKEN_ENV, TOKEN_A)
    with pytest.raises(base.PreflightError, match='destination DTN.*401'):
        driver(sites, source_token_file=None, dest_token_file=None,
               probe=False).check()
    driver(sites, dest_token_file=None, dest_endpoint=a.url,
           dest_dir=str(a.export), dest_node='site-a', probe=False).check()


def test_missing_settings_are_listed(sites):
    with pytest.raises(base.PreflightError,
                       match='needs the URL of the destination DTN service, '
                             'the destination DTN directory'):
        driver(sites, dest_endpoint=None, dest_dir=None).check()


def test_unknown_mover_is_refused(sites):
    with pytest.raises(base.PreflightError,
                       match="has no mover 'pigeon' \\(it has: localcopy, "
                             "slowcopy, unavailable\\)"):
        driver(sites, mover='pigeon').check()


def test_unavailable_mover_fails_the_probe(sites):
    with pytest.raises(base.PreflightError,
                       match='probe transfer through the DTNs failed: DTN '
                             'site-a to DTN site-b .*unavailable mover has '
                             'no binary'):
        driver(sites, mover='unavailable').check()


def test_unregistered_destination_node(sites):
    with pytest.raises(base.PreflightError,
                       match="does not know the destination DTN node "
                             "'site-c'; register it there"):
        driver(sites, dest_node='site-c').check()


def test_directory_outside_the_exports(sites, tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    with pytest.raises(base.PreflightError,
                       match='destination DTN directory .*elsewhere is '
                             "outside the exports of node 'site-b'"):
        driver(sites, dest_dir=str(elsewhere)).check()


def test_directory_mapping_mismatch_is_caught_by_the_probe(sites, tmp_path):
    _a, b = sites
    mounted_elsewhere = tmp_path / 'not-the-mount'
    mounted_elsewhere.mkdir()
    with pytest.raises(base.PreflightError, match='did not appear in') as e:
        driver(sites, dest_dir=str(mounted_elsewhere),
               dest_path=str(b.export)).check()
    # the probe cannot be removed from here: the message names it
    assert os.listdir(mounted_elsewhere) == []
    [left] = os.listdir(b.export)
    assert '(remove %s there)' % left in str(e.value)


def test_not_enough_space(sites):
    with pytest.raises(base.PreflightError, match='bytes free; .* are '
                                                  'needed'):
        driver(sites, probe=False).check(size=1 << 60)


def test_an_image_that_already_arrived_is_not_sent_again(
        sites, image, image_server):
    a, b = sites
    (b.export / 'src-0001.img').write_bytes(image.data)
    result = driver(sites).transfer(image.source, image.dest, None)
    assert result.sha512 == image.sha512
    assert image_server.uploads['dst-0001'] == image.data
    assert a.client().transfers() == []


def test_a_damaged_arrival_is_caught_and_sent_again(sites, image,
                                                     image_server):
    a, b = sites
    damaged = bytearray(image.data)
    damaged[12345] ^= 0xFF
    (b.export / 'src-0001.img').write_bytes(bytes(damaged))
    with pytest.raises(base.HashMismatch):
        driver(sites).transfer(image.source, image.dest, None)
    assert 'dst-0001' not in image_server.uploads
    assert image_server.wait_for_aborted_puts(1) == 1
    assert not (b.export / 'src-0001.img').exists()
    # the staged copy was verified against the source: kept, not re-read
    assert (a.export / 'src-0001.img').read_bytes() == image.data
    image_server.reset_counts()
    driver(sites).transfer(image.source, image.dest, None)
    assert image_server.uploads['dst-0001'] == image.data
    assert image_server.served == 0
    assert len(a.client().transfers()) == 1


def test_a_transfer_still_running_from_an_earlier_run_is_awaited(
        sites, image, image_server):
    a, b = sites
    (a.export / 'src-0001.img').write_bytes(image.data)
    a.client().start_transfer(
        {'node': 'site-a', 'path': str(a.export / 'src-0001.img')},
        {'node': 'site-b', 'path': str(b.export / 'src-0001.img')},
        mover='slowcopy')
    driver(sites, mover='slowcopy').transfer(image.source, image.dest, None)
    assert image_server.uploads['dst-0001'] == image.data
    assert len(a.client().transfers()) == 1


def test_a_failed_dtn_transfer_names_both_nodes(sites, image, image_server):
    with pytest.raises(base.TransportError,
                       match='Moving image src-0001 between the DTNs failed: '
                             'DTN site-a to DTN site-b'):
        driver(sites, mover='unavailable').transfer(image.source, image.dest,
                                                    None)
    assert 'dst-0001' not in image_server.uploads


def test_source_hash_mismatch_stops_before_the_dtns(sites, image,
                                                    image_server):
    a, b = sites
    image.source.hash_value = hashlib.sha512(b'other').hexdigest()
    with pytest.raises(base.HashMismatch):
        driver(sites).transfer(image.source, image.dest, None)
    assert a.client().transfers() == []
    assert os.listdir(a.export) == []


def test_tokens_never_reach_the_logs_or_the_options(sites, image,
                                                    image_server, caplog):
    caplog.set_level(logging.DEBUG)
    transport = driver(sites)
    transport.check(size=len(image.data))
    transport.transfer(image.source, image.dest, None)
    assert 'DTN transfer' in caplog.text
    for token in (TOKEN_A, TOKEN_B):
        assert token not in caplog.text
        assert token not in repr(transport.options)


def test_a_root_disk_path_comes_from_the_template_and_safe_names_only():
    template = '/nova/{host}/instances/{server}/disk'
    assert dtn_transport.disk_path(template, 'ab-12', 'compute-1.lab') == \
        '/nova/compute-1.lab/instances/ab-12/disk'
    for server, host in (('../x', 'h'), ('s', '..'), ('s', 'a/b'),
                         ('s', None)):
        with pytest.raises(base.TransportError, match='cannot name a disk'):
            dtn_transport.disk_path(template, server, host)
    for bad in ('/nova/instances/disk', '/nova/{server}/{name}'):
        with pytest.raises(base.PreflightError, match='must hold {server}'):
            dtn_transport.disk_path(bad, 's', 'h')


def test_warm_roots_need_the_instance_store_or_the_glance_store(sites):
    shares = dict(source_volumes='/v', dest_volumes='/w')
    with pytest.raises(base.PreflightError,
                       match='needs --dtn-source-disks or '
                             '--dtn-source-images'):
        driver(sites, **shares).check_deltas(images=True)
    with pytest.raises(base.PreflightError, match='must hold {server}'):
        driver(sites, source_disks='/nova/disk', **shares).check_deltas(
            images=True)
    with pytest.raises(base.PreflightError, match='not an absolute path'):
        driver(sites, source_disks='nova/{server}',
               **shares).check_deltas(images=True)
    assert driver(sites, source_disks='/nova/{server}', **shares) \
        .reads_disks()
    assert not driver(sites, **shares).reads_disks()
