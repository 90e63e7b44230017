"""The builtin mover against a real Receiver on 127.0.0.1."""

import os
import threading

import pytest

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import blockpipe
from overcloud_migrate.dtn.movers import builtin

TOKEN = 'test-token-not-a-secret'


@pytest.fixture
def dest(tmp_path):
    root = tmp_path / 'dest'
    root.mkdir()
    return root


@pytest.fixture
def receiver(dest):
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(dest), rel),
                            TOKEN) as recv:
        yield recv


def _request(source, receiver, **options):
    return base.TransferRequest(
        source_path=str(source), dest_host='127.0.0.1', dest_port=receiver.port,
        dest_path='copy.bin', streams=2, verify_sha256=True, options=options)


def test_contract():
    mover = builtin.BuiltinMover()
    assert isinstance(mover, base.Mover)
    assert mover.name == 'builtin'
    assert mover.capabilities == {'parallel-streams', 'sparse', 'resume',
                                  'checksum'}


def test_transfer_with_the_token_in_the_request(tmp_path, receiver, dest):
    source = tmp_path / 'source.bin'
    source.write_bytes(os.urandom(1024 * 1024 + 3))
    seen = []
    result = builtin.BuiltinMover().transfer(
        _request(source, receiver, token=TOKEN, chunk_size=256 * 1024),
        seen.append, threading.Event())
    assert (dest / 'copy.bin').read_bytes() == source.read_bytes()
    assert result.bytes == seen[-1] == 1024 * 1024 + 3
    assert result.sha256


def test_transfer_without_a_token_fails(tmp_path, receiver, dest):
    source = tmp_path / 'source.bin'
    source.write_bytes(b'x')
    with pytest.raises(base.MoverError, match='no data port token'):
        builtin.BuiltinMover().transfer(_request(source, receiver),
                                        lambda done: None, threading.Event())
    assert list(dest.iterdir()) == []


def test_check(receiver):
    builtin.BuiltinMover().check()              # cryptography importable
    builtin.BuiltinMover(token=TOKEN).check('127.0.0.1', receiver.port)
    with pytest.raises(base.MoverError, match='token'):
        builtin.BuiltinMover(token='wrong').check('127.0.0.1', receiver.port)


def test_check_unreachable_peer():
    with pytest.raises(base.MoverUnavailable, match='cannot reach'):
        builtin.BuiltinMover(peer_host='127.0.0.1', peer_port=9).check()
