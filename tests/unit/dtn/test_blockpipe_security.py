"""The builtin mover's data port against an attacker (issue 15, section 2)."""

import hashlib
import hmac
import os
import secrets
import socket
import struct
import threading
import time

import pytest

from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import blockpipe
from overcloud_migrate.dtn.movers import builtin

TOKEN = 'test-token-not-a-secret'
MIB = 1024 * 1024


@pytest.fixture
def tree(tmp_path):
    export = tmp_path / 'export'
    outside = tmp_path / 'outside'
    export.mkdir()
    outside.mkdir()
    (outside / 'secret.txt').write_bytes(b'secret outside the export\n')
    return export, outside


def _recv_exact(sock, n):
    data = b''
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            break
        data += piece
    return data


def test_relayed_handshake_cannot_send_its_own_frames(tree):
    """A relay passes the receiver's nonce to a real sender and the
    sender's answer back; it is then logged in, but cannot open a file."""
    export, _ = tree
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN, handshake_timeout=2) as recv:
        sock = socket.create_connection(('127.0.0.1', recv.port), timeout=5)
        banner = _recv_exact(sock, 7 + 32)
        server_nonce = banner[7:]
        # What the real sender answers to the nonce the relay showed it:
        client_nonce = secrets.token_bytes(32)
        answer = hmac.new(TOKEN.encode(), b'client' + server_nonce +
                          client_nonce, hashlib.sha256).digest()
        sock.sendall(client_nonce + answer)
        assert _recv_exact(sock, 1) == b'Y'
        _recv_exact(sock, 32)
        # The relay's own frame (it knows no session key).
        body = (b'{"op":"open","path":"evil.txt","size":5,'
                b'"chunk_size":65536,"identity":"x"}')
        sock.sendall(b'J' + struct.pack('!I', len(body)) + body +
                     bytes(16))
        reply = sock.recv(4096)
        sock.close()
        time.sleep(0.1)
    assert b'"ok":true' not in reply
    assert sorted(os.listdir(export)) == []


def _swapping_resolver(export, outside):
    """Confines, then (the race) swaps the directory for a symlink."""
    def resolve(rel):
        assert rel == 'sub/x.img'
        (export / 'sub').rmdir()
        os.symlink(outside, export / 'sub')
        return str(export), rel
    return resolve


def test_receiver_does_not_follow_a_parent_swapped_for_a_symlink(tree,
                                                                 tmp_path):
    export, outside = tree
    (export / 'sub').mkdir()
    source = tmp_path / 'x.img'
    source.write_bytes(os.urandom(MIB))
    with blockpipe.Receiver('127.0.0.1', 0,
                            _swapping_resolver(export, outside),
                            TOKEN) as recv:
        with pytest.raises(base.MoverError, match='symlink'):
            blockpipe.send(str(source), '127.0.0.1', recv.port, 'sub/x.img',
                           TOKEN, chunk_size=256 * 1024)
    assert sorted(os.listdir(outside)) == ['secret.txt']


@pytest.mark.parametrize('link', ['dir', 'file'])
def test_sender_does_not_follow_a_symlink_below_the_root(tree, link,
                                                         tmp_path):
    export, outside = tree
    dest = tmp_path / 'dest'
    dest.mkdir()
    if link == 'dir':
        os.symlink(outside, export / 'sub')
        source = export / 'sub' / 'secret.txt'
    else:
        os.symlink(outside / 'secret.txt', export / 'secret.txt')
        source = export / 'secret.txt'
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(dest), rel),
                            TOKEN) as recv:
        mover = builtin.BuiltinMover(token=TOKEN)
        request = base.TransferRequest(
            source_path=str(source), dest_host='127.0.0.1',
            dest_port=recv.port, dest_path='got.txt', streams=1,
            options={'source_root': str(export)})
        with pytest.raises(base.MoverError, match='symlink'):
            mover.transfer(request, lambda n: None, threading.Event())
    assert os.listdir(dest) == []


def test_build_request_carries_the_source_root(tree):
    export, _ = tree
    from overcloud_migrate.dtn import paths
    source = paths.confine(str(export / 'f'), {'e': str(export)})
    dest = paths.confine('/d/f', {'d': '/d'})
    request = transfers.build_request(
        builtin.BuiltinMover(), {'local': True, 'gridftp_scheme': 'ftp',
                                 'address': 'h', 'gridftp_port': 1},
        source, {'address': 'h2', 'data_port': 5, 'name': 'b',
                 'gridftp_scheme': 'ftp'}, dest, 2,
        data_token=TOKEN)
    assert request.options['source_root'] == str(export)


def test_idle_logins_time_out_and_one_peer_cannot_fill_the_port(tree,
                                                               tmp_path):
    export, _ = tree
    source = tmp_path / 'f.bin'
    source.write_bytes(os.urandom(MIB))
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN, handshake_timeout=0.5,
                            max_pending_per_peer=3) as recv:
        idle = [socket.create_connection(('127.0.0.1', recv.port), timeout=5)
                for _ in range(3)]
        for sock in idle:
            assert len(_recv_exact(sock, 39)) == 39     # banner
        extra = socket.create_connection(('127.0.0.1', recv.port), timeout=5)
        assert extra.recv(100) == b''                  # refused at once
        extra.close()
        started = time.monotonic()
        for sock in idle:
            assert sock.recv(100) == b''                # dropped
            sock.close()
        assert time.monotonic() - started < 3
        result = blockpipe.send(str(source), '127.0.0.1', recv.port, 'f.bin',
                                TOKEN, chunk_size=256 * 1024)
    assert result.bytes == MIB
    assert (export / 'f.bin').read_bytes() == source.read_bytes()


def test_announced_size_capped(tree, tmp_path):
    export, _ = tree
    source = tmp_path / 'f.bin'
    source.write_bytes(os.urandom(2 * MIB))
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN, max_file_size=MIB) as recv:
        with pytest.raises(base.MoverError, match='more than this receiver'):
            blockpipe.send(str(source), '127.0.0.1', recv.port, 'f.bin',
                           TOKEN, chunk_size=256 * 1024)
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN, free_space=lambda fd: 4096) as recv:
        with pytest.raises(base.MoverError, match='No space left'):
            blockpipe.send(str(source), '127.0.0.1', recv.port, 'f.bin',
                           TOKEN, chunk_size=256 * 1024)
    assert os.listdir(export) == []


def test_cancelled_builtin_transfer_leaves_nothing(tree, tmp_path):
    export, _ = tree
    source = tmp_path / 'big.bin'
    source.write_bytes(os.urandom(8 * MIB))
    cancel = threading.Event()
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN) as recv:
        mover = builtin.BuiltinMover(token=TOKEN, chunk_size=64 * 1024)
        request = base.TransferRequest(
            source_path=str(source), dest_host='127.0.0.1',
            dest_port=recv.port, dest_path='big.bin', streams=1)
        with pytest.raises(base.TransferCancelled):
            mover.transfer(request, lambda n: cancel.set(), cancel)
    assert os.listdir(export) == []


def test_data_port_refuses_peers_outside_the_allowed_networks(tree):
    from overcloud_migrate.dtn import checks
    export, _ = tree
    allowed = checks.NetworkAllowList(['10.0.0.0/8'])
    with blockpipe.Receiver('127.0.0.1', 0, lambda rel: (str(export), rel),
                            TOKEN, peer_allowed=allowed.allows) as recv:
        sock = socket.create_connection(('127.0.0.1', recv.port), timeout=5)
        assert sock.recv(100) == b''          # closed before the banner
        sock.close()
    assert checks.NetworkAllowList(['127.0.0.0/8']).allows('127.0.0.1')
    assert checks.NetworkAllowList().allows('192.0.2.1')
