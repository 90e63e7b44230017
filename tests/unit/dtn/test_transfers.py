import os

import pytest

from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import gridftp


def test_declared_movers_come_from_setup_cfg():
    assert {'gridftp', 'builtin'} <= set(transfers.mover_names())
    assert isinstance(transfers.load_mover('gridftp'), gridftp.GridftpMover)


def test_unknown_mover_lists_the_valid_ones():
    with pytest.raises(transfers.UnknownMover, match='valid movers: .*gridftp'):
        transfers.load_mover('rsync; rm -rf /')


def test_registry_injects_test_movers_only_when_asked():
    class Dummy(base.Mover):
        name = 'dummy'

        def check(self):
            pass

        def transfer(self, request, progress, cancel):
            raise NotImplementedError

    registry = transfers.MoverRegistry({'dummy': Dummy()})
    assert registry.names() == ['dummy']
    assert isinstance(registry.load('dummy'), Dummy)
    with pytest.raises(transfers.UnknownMover):
        registry.load('gridftp')
    assert 'gridftp' in transfers.MoverRegistry().names()


def _node(name, local, data_port=None):
    return {'name': name, 'address': '10.0.0.%d' % (1 if local else 2),
            'gridftp_port': 2811, 'gridftp_scheme': 'ftp',
            'data_port': data_port, 'local': local}


SOURCE = paths.ConfinedPath('data', '/export/data', '/export/data/vm.img',
                            'vm.img')
DEST = paths.ConfinedPath('images', '/srv/images', '/srv/images/a/vm.img',
                          'a/vm.img')


def test_gridftp_request_names_both_servers():
    request = transfers.build_request(
        gridftp.GridftpMover(), _node('a', True), SOURCE, _node('b', False),
        DEST, 3)
    assert (request.source_path, request.dest_host, request.dest_port,
            request.dest_path, request.streams) == (
        '/export/data/vm.img', '10.0.0.2', 2811, 'a/vm.img', 3)
    assert request.options['source_host'] == '10.0.0.1'
    assert request.options['dest_root'] == '/srv/images'


class _Reader(base.Mover):
    name = 'reader'

    def check(self):
        pass

    def transfer(self, request, progress, cancel):
        raise NotImplementedError


def test_reading_movers_need_a_local_source_and_a_data_port():
    with pytest.raises(base.MoverUnavailable, match='source must be on this'):
        transfers.build_request(_Reader(), _node('a', False), SOURCE,
                                _node('b', False, 22642), DEST, 4)
    with pytest.raises(base.MoverUnavailable, match='no data port'):
        transfers.build_request(_Reader(), _node('a', True), SOURCE,
                                _node('b', False), DEST, 4)
    request = transfers.build_request(
        _Reader(), _node('a', True), SOURCE, _node('b', False, 22642), DEST,
        4, data_token='s3cret-token-value')
    assert (request.dest_port, request.dest_path) == (22642, 'images/a/vm.img')
    assert request.options['token'] == 's3cret-token-value'


@pytest.fixture
def exports(tmp_path):
    export = tmp_path / 'images'
    export.mkdir()
    (tmp_path / 'outside').mkdir()
    os.symlink(tmp_path / 'outside', export / 'out')
    return {'images': str(export)}


def test_receiver_resolver_maps_export_names(exports):
    resolve = transfers.receiver_resolver(exports)
    assert resolve('images/sub/vm.img') == (exports['images'], 'sub/vm.img')


@pytest.mark.parametrize('rel, words', [
    ('other/vm.img', 'does not name'),
    ('images', 'does not name'),
    ('images/', 'does not name'),
    ('images/.', 'export root'),
    ('images/../outside/x', '".."'),
    ('images/out/x', 'symlink'),
    ('images/a\x00b', 'NUL'),
    ('/etc/passwd', 'does not name'),
])
def test_receiver_resolver_refuses(exports, rel, words):
    with pytest.raises(paths.PathRefused, match=words):
        transfers.receiver_resolver(exports)(rel)
