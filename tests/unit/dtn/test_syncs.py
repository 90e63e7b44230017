"""Syncs between two real DTN services (subprocesses on 127.0.0.1).

Each service is the real ``overcloud-dtn-api`` with its builtin data port,
so a test can kill one with SIGKILL in the middle of a round and start it
again on the same database and state directory.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.transports import dtn as dtn_transport

KIB = 1024
MIB = 1024 * KIB
BS = 4096
API_TOKEN = 'sync-test-api-token-0123456789abcdef'
DATA_TOKEN = 'sync-test-data-token-0123456789abcdef'


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Service:
    """One DTN service process: node ``name`` exporting ``export``."""

    def __init__(self, tmp, name, export, data_token=DATA_TOKEN):
        self.tmp = tmp
        self.name = name
        self.export = export
        self.state = tmp / ('state-%s' % name)
        self.data_port = _free_port()
        self.token_file = tmp / ('api-token-%s' % name)
        self.token_file.write_text(API_TOKEN)
        self.data_token_file = tmp / ('data-token-%s' % name)
        self.data_token_file.write_text(data_token)
        self.proc = None
        self.client = None

    def start(self):
        argv = [sys.executable, '-m', 'overcloud_migrate.dtn.service',
                '--host', '127.0.0.1', '--port', '0',
                '--node-name', self.name,
                '--export', 'data=%s' % self.export,
                '--gridftp-url-base', 'ftp://127.0.0.1:%d' % self.data_port,
                '--data-port', str(self.data_port),
                '--data-token-file', str(self.data_token_file),
                '--token-file', str(self.token_file),
                '--database-url', 'sqlite:///%s/db.sqlite' % self.state,
                '--sync-state-dir', str(self.state / 'syncs'),
                '--log-level', 'INFO']
        self.log = open(self.tmp / ('%s.log' % self.name), 'a')
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith('overcloud-dtn-api: serving'), line
        url = line.split()[2]
        self.client = dtn_client.DTNClient(url, token=API_TOKEN)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.log.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
            self.log.close()

    def signatures(self):
        directory = self.state / 'syncs'
        return sorted(os.listdir(directory)) if directory.exists() else []


@pytest.fixture
def pair(tmp_path):
    """DTN a (the source side) knowing DTN b (the destination side)."""
    export_a = tmp_path / 'export-a'
    export_b = tmp_path / 'export-b'
    outside = tmp_path / 'outside'
    for path in (export_a, export_b, outside):
        path.mkdir()
    a = Service(tmp_path, 'a', export_a)
    b = Service(tmp_path, 'b', export_b)
    try:
        a.start()
        b.start()
        a.client.add_node('b', '127.0.0.1', {'data': str(export_b)},
                          gridftp_port=b.data_port, data_port=b.data_port)
        yield a, b
    finally:
        a.stop()
        b.stop()


def _image(path, size, data_blocks, seed=1):
    """A sparse file of ``size`` bytes with random data in ``data_blocks``
    (block indices)."""
    rng = random.Random(seed)
    with open(path, 'wb') as fh:
        fh.truncate(size)
        for index in data_blocks:
            fh.seek(index * BS)
            fh.write(rng.randbytes(min(BS, size - index * BS)))
    return path


def _empty(path, size):
    with open(path, 'wb') as fh:
        fh.truncate(size)
    return path


def _sync(a, source, dest, key='vol-1', streams=4, **kwargs):
    row = a.client.start_sync('a:%s' % source, 'b:%s' % dest, key,
                              streams=streams)
    assert row['mode'] == 'sync' and row['key'] == key
    return a.client.wait_transfer(row['id'], timeout=120, interval=0.05,
                                  **kwargs)


def _bytes(path):
    with open(path, 'rb') as fh:
        return fh.read()


DATA_BLOCKS = [0, 1, 2, 100, 101, 700, 1023, 1024]
SIZE = 1024 * BS + 77          # an unaligned tail


def test_first_round_copies_a_sparse_file(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    row = _sync(a, source, dest)
    assert row['state'] == 'done' and row['error'] is None
    assert row['round'] == 1 and row['size'] == SIZE
    data = (len(DATA_BLOCKS) - 1) * BS + 77
    # only the data blocks crossed, zeros and holes did not
    assert row['bytes'] == row['changed_bytes'] == data
    assert row['repaired_bytes'] == 0
    assert _bytes(dest) == _bytes(source)
    # the destination stays sparse: only data was written
    assert os.stat(dest).st_blocks * 512 < SIZE // 2
    # signatures in each state directory, none in the exports
    assert a.signatures() and b.signatures()
    assert sorted(os.listdir(b.export)) == ['vol.img']
    log = a.client.log(file='vol.img')
    assert log[-1]['sync']['key'] == 'vol-1'
    assert log[-1]['sync']['bytes'] == data


def test_second_round_sends_only_the_changed_blocks(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    assert _sync(a, source, dest)['round'] == 1
    changed = [5, 100, 333, 900, 1000]      # holes and data blocks alike
    rng = random.Random(7)
    with open(source, 'r+b') as fh:
        for index in changed:
            fh.seek(index * BS)
            fh.write(rng.randbytes(BS))
    row = _sync(a, source, dest)
    assert row['state'] == 'done' and row['round'] == 2
    assert row['changed_bytes'] == len(changed) * BS
    assert row['bytes'] == len(changed) * BS
    assert row['repaired_bytes'] == 0
    assert _bytes(dest) == _bytes(source)
    # nothing changed: nothing crosses
    row = _sync(a, source, dest)
    assert (row['round'], row['bytes'], row['changed_bytes']) == (3, 0, 0)


def test_each_round_may_read_another_source_file(pair):
    """Warm migration of an image-booted server reads a new snapshot file
    each round: what the destination holds is remembered by the
    destination file, so the next round is still a delta."""
    a, b = pair
    first = _image(a.export / 'snap-1.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    assert _sync(a, first, dest)['round'] == 1
    second = a.export / 'snap-2.img'
    second.write_bytes(_bytes(first))
    with open(second, 'r+b') as fh:
        fh.seek(3 * BS)
        fh.write(random.Random(9).randbytes(BS))
    row = _sync(a, second, dest)
    assert (row['round'], row['changed_bytes'], row['bytes']) == (2, BS, BS)
    assert _bytes(dest) == _bytes(second)


def test_a_damaged_destination_block_is_repaired(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    _sync(a, source, dest)
    with open(dest, 'r+b') as fh:
        fh.seek(101 * BS + 10)          # a data block
        fh.write(b'rot')
        fh.seek(50 * BS)                # a block that should be zeros
        fh.write(b'junk')
    row = _sync(a, source, dest)
    assert row['state'] == 'done' and row['round'] == 2
    assert row['changed_bytes'] == 0
    assert row['repaired_bytes'] == 2 * BS
    assert row['bytes'] == BS           # the zero block went as a zero run
    assert _bytes(dest) == _bytes(source)


def test_a_dirty_destination_is_repaired_in_the_first_round(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _image(b.export / 'vol.img', SIZE, [3, 4, 700], seed=9)
    row = _sync(a, source, dest)
    assert row['state'] == 'done' and row['round'] == 1
    # blocks 3 and 4 hold junk where the source has zeros
    assert row['repaired_bytes'] == 2 * BS
    assert _bytes(dest) == _bytes(source)


def test_a_smaller_destination_is_refused_and_nothing_written(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _image(b.export / 'vol.img', SIZE - BS, [1], seed=3)
    before = _bytes(dest)
    with pytest.raises(dtn_client.TransferFailed) as caught:
        _sync(a, source, dest)
    error = caught.value.transfer['error']
    assert str(source) in error and str(dest) in error
    assert str(SIZE) in error and str(SIZE - BS) in error
    assert _bytes(dest) == before
    assert not a.signatures() and not b.signatures()


@pytest.mark.parametrize('magic, name', [
    (b'QFI\xfb\x00\x00\x00\x03', 'qcow2'), (b'KDMV', 'VMDK')])
def test_a_raw_sync_refuses_a_disk_image_container(pair, magic, name):
    a, b = pair
    source = _image(a.export / 'disk', SIZE, DATA_BLOCKS)
    with open(source, 'r+b') as fh:
        fh.write(magic)
    dest = _image(b.export / 'vol.img', SIZE, [1], seed=3)
    before = _bytes(dest)
    with pytest.raises(dtn_client.DTNClientError) as caught:
        a.client.start_sync('a:%s' % source, 'b:%s' % dest, 'vol-1',
                            raw=True)
    assert 'is a %s image, not a raw disk' % name in str(caught.value)
    assert str(source) in str(caught.value)
    assert _bytes(dest) == before
    assert not a.signatures() and not b.signatures()
    # The same bytes without ``raw``: a file is a file.
    _sync(a, source, dest)
    assert _bytes(dest) == _bytes(source)


def test_a_raw_sync_of_a_raw_disk_runs(pair):
    a, b = pair
    source = _image(a.export / 'disk', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    row = a.client.start_sync('a:%s' % source, 'b:%s' % dest, 'vol-1',
                              raw=True)
    a.client.wait_transfer(row['id'], timeout=120, interval=0.05)
    assert _bytes(dest) == _bytes(source)


def test_a_larger_destination_gets_the_source_and_keeps_its_tail(pair):
    """A raw disk into a volume rounded up to whole GiB."""
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE + 3 * BS)
    with open(dest, 'r+b') as fh:
        fh.seek(SIZE + BS)
        fh.write(b'tail')
    row = _sync(a, source, dest)
    assert row['state'] == 'done' and row['size'] == SIZE
    assert os.path.getsize(dest) == SIZE + 3 * BS
    assert _bytes(dest)[:SIZE] == _bytes(source)
    assert _bytes(dest)[SIZE + BS:SIZE + BS + 4] == b'tail'
    # the next round finds nothing to send, the tail is not "damage"
    again = _sync(a, source, dest)
    assert (again['round'], again['bytes'], again['repaired_bytes']) == \
        (2, 0, 0)


def test_paths_that_escape_and_symlinks_are_refused(pair, tmp_path):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    target = _empty(tmp_path / 'outside' / 'victim.img', SIZE)
    with pytest.raises(dtn_client.DTNClientError, match='".."') as caught:
        a.client.start_sync('a:%s' % source,
                            'b:%s/../outside/victim.img' % b.export, 'k')
    assert caught.value.status == 400
    with pytest.raises(dtn_client.DTNClientError) as caught:
        a.client.start_sync('a:%s' % source, 'b:%s' % target, 'k')
    assert caught.value.status == 403
    (b.export / 'link.img').symlink_to(target)
    with pytest.raises(dtn_client.TransferFailed, match='symlink'):
        _sync(a, source, b.export / 'link.img', key='k')
    inside = _empty(b.export / 'real.img', SIZE)
    (b.export / 'inner-link.img').symlink_to(inside)
    with pytest.raises(dtn_client.TransferFailed, match='symlink'):
        _sync(a, source, b.export / 'inner-link.img', key='k')
    assert _bytes(target) == bytes(SIZE) == _bytes(inside)
    with pytest.raises(dtn_client.DTNClientError, match='key') as caught:
        a.client.start_sync('a:%s' % source, 'b:%s' % inside, '../etc')
    assert caught.value.status == 400


def test_forget_sync_drops_both_signatures(pair):
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    _sync(a, source, dest)
    assert _sync(a, source, dest)['round'] == 2
    answer = a.client.forget_sync('vol-1')
    assert answer['removed'] == 2
    assert not a.signatures() and not b.signatures()
    assert a.client.forget_sync('vol-1')['removed'] == 0   # idempotent
    row = _sync(a, source, dest)
    # round 1 again; the destination holds every block already
    assert row['round'] == 1 and row['bytes'] == 0
    assert _bytes(dest) == _bytes(source)


def test_a_wrong_data_token_is_refused(tmp_path):
    export_a = tmp_path / 'export-a'
    export_b = tmp_path / 'export-b'
    export_a.mkdir()
    export_b.mkdir()
    a = Service(tmp_path, 'a', export_a, data_token='not-' + DATA_TOKEN)
    b = Service(tmp_path, 'b', export_b)
    try:
        a.start()
        b.start()
        a.client.add_node('b', '127.0.0.1', {'data': str(export_b)},
                          gridftp_port=b.data_port, data_port=b.data_port)
        source = _image(export_a / 'disk.img', SIZE, DATA_BLOCKS)
        dest = _empty(export_b / 'vol.img', SIZE)
        with pytest.raises(dtn_client.TransferFailed, match='token'):
            _sync(a, source, dest)
        assert _bytes(dest) == bytes(SIZE)
        assert not b.signatures()
    finally:
        a.stop()
        b.stop()


BIG = 96 * MIB


def _start_and_stall(a, source, dest, victim=None):
    """Start round 1 of key vol-1; once part of the data is on the
    destination's disk, stop the process of ``victim`` (SIGSTOP: the round
    stalls there).  The round's row."""
    row = a.client.start_sync('a:%s' % source, 'b:%s' % dest, 'vol-1',
                              streams=2)
    deadline = time.monotonic() + 60
    while os.stat(dest).st_blocks * 512 < 8 * MIB:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    if victim is not None:
        victim.proc.send_signal(signal.SIGSTOP)
    return row


def _interrupt(a, b, how, source, dest):
    """Start round 1, stop it once part of the data is on the
    destination's disk, the way ``how`` says."""
    victim = {'dest': b, 'source': a}.get(how)
    row = _start_and_stall(a, source, dest, victim)
    if victim is None:
        a.client.cancel_transfer(row['id'])
    if how == 'dest':
        # one round per key at a time
        with pytest.raises(dtn_client.DTNClientError) as caught:
            a.client.start_sync('a:%s' % source, 'b:%s' % dest, 'vol-1')
        assert caught.value.status == 409
    if victim is not None:
        victim.kill()
        victim.start()
        if victim is b:
            with pytest.raises(dtn_client.TransferFailed):
                a.client.wait_transfer(row['id'], timeout=120, interval=0.05)
    else:
        with pytest.raises(dtn_client.TransferFailed) as caught:
            a.client.wait_transfer(row['id'], timeout=120, interval=0.05)
        assert caught.value.transfer['state'] == 'cancelled'


@pytest.mark.parametrize('how', ['dest', 'source', 'cancel'])
def test_an_interrupted_round_converges_when_run_again(pair, how):
    a, b = pair
    source = a.export / 'disk.img'
    with open(source, 'wb') as fh:
        fh.write(random.Random(5).randbytes(BIG))
    dest = _empty(b.export / 'vol.img', BIG)
    _interrupt(a, b, how, source, dest)
    assert not a.signatures() and not b.signatures()   # nothing committed
    row = _sync(a, source, dest, streams=2)
    assert row['state'] == 'done' and row['round'] == 1
    # what the cut round wrote was not sent again
    assert row['bytes'] < BIG
    assert _bytes(dest) == _bytes(source)
    assert _sync(a, source, dest)['bytes'] == 0



def test_a_round_an_earlier_run_left_is_waited_for_then_ours_runs(
        pair, caplog):
    """The transport starts its round at once; refused because a round of
    the key still runs (an interrupted run's), it waits for that one and
    then runs its own."""
    a, b = pair
    source = a.export / 'volume-src'
    with open(source, 'wb') as fh:
        fh.write(random.Random(6).randbytes(BIG))
    dest = _empty(b.export / 'volume-dst', BIG)
    transport = dtn_transport.DtnTransport(
        source_endpoint=a.client.endpoint, dest_endpoint=b.client.endpoint,
        source_dir=str(a.export), dest_dir=str(b.export),
        source_token_file=str(a.token_file),
        dest_token_file=str(b.token_file), source_volumes=str(a.export),
        dest_volumes=str(b.export), source_node='a', dest_node='b',
        poll_interval=0.05, probe=False)
    earlier = _start_and_stall(a, source, dest, b)   # b is stopped
    results = []
    caplog.set_level('INFO', logger=dtn_transport.LOG.name)
    ours = threading.Thread(target=lambda: results.append(
        transport.sync_volume('src', 'dst', 'vol-1', None)))
    try:
        ours.start()
        deadline = time.monotonic() + 60
        while 'Waiting for sync %s' % earlier['id'] not in caplog.text:
            assert time.monotonic() < deadline and ours.is_alive()
            time.sleep(0.01)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    ours.join(120)
    assert a.client.transfer(earlier['id'])['state'] == 'done'
    assert results and results[0].round == 2
    assert _bytes(dest) == _bytes(source)

def test_the_sync_commands(pair, capsys, monkeypatch, tmp_path):
    """``openstack overcloud dtn sync`` and ``sync forget``, in process,
    with -f json (no cloud credentials)."""
    from openstackclient import shell
    for name in list(os.environ):
        if name.startswith('OS_') or name.startswith('OVERCLOUD_MIGRATE_DTN'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))
    a, b = pair
    source = _image(a.export / 'disk.img', SIZE, DATA_BLOCKS)
    dest = _empty(b.export / 'vol.img', SIZE)
    opts = ['--dtn-endpoint', a.client.endpoint, '--dtn-token-file',
            str(a.token_file), '-f', 'json']

    def run(*argv):
        code = shell.OpenStackShell().run(['overcloud', 'dtn'] + list(argv)
                                          + opts)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run('sync', 'a:%s' % source, 'b:%s' % dest, '--key',
                         'vol-1', '--wait', '--timeout', '60')
    assert code == 0, err
    row = json.loads(out)
    assert (row['State'], row['Key'], row['Round']) == ('done', 'vol-1', 1)
    assert row['Bytes'] == row['Changed Bytes'] == 7 * BS + 77
    assert _bytes(dest) == _bytes(source)
    code, out, err = run('sync', 'forget', 'vol-1')
    assert code == 0, err
    assert json.loads(out) == {'Key': 'vol-1', 'Removed': 2}
    code, out, err = run('sync', 'a:%s' % source, 'b:%s' % dest, '--key',
                         'bad/key')
    assert code == 1 and out == '' and 'sync key' in err


def test_a_first_round_into_an_empty_destination_reads_the_source_once(
        pair, tmp_path, monkeypatch):
    """No hash pass before sending when neither side holds anything (a new
    volume): the digests come from what was sent.  A destination holding
    data, or a later round, is hashed against."""
    from overcloud_migrate.dtn import delta
    from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    _a, b = pair
    hashed = []
    compute = delta.compute_fd
    monkeypatch.setattr(delta, 'compute_fd', lambda *args, **kwargs: (
        hashed.append(1), compute(*args, **kwargs))[1])
    source = _image(tmp_path / 'disk', SIZE, DATA_BLOCKS)
    state = tmp_path / 'sender-state'

    def round_(dest_name, key):
        return delta_sender.sync(str(source), '127.0.0.1', b.data_port,
                                 'data/%s' % dest_name, DATA_TOKEN, key,
                                 str(state))

    dest = _empty(b.export / 'new.img', SIZE)
    result = round_('new.img', 'new')
    assert (result.round, hashed) == (1, [])
    assert _bytes(dest) == _bytes(source)
    assert result.changed_bytes == result.bytes == len(DATA_BLOCKS) * BS - \
        (BS - 77)       # the last block is the 77-byte tail
    # round 2 hashes; only what changed goes
    with open(source, 'r+b') as fh:
        fh.seek(100 * BS)
        fh.write(b'\1' * BS)
    result = round_('new.img', 'new')
    assert (result.round, len(hashed), result.bytes) == (2, 1, BS)
    assert _bytes(dest) == _bytes(source)
    # a destination that holds data is hashed against, what it holds stays
    dirty = _image(b.export / 'dirty.img', SIZE, [5], seed=9)
    result = round_('dirty.img', 'dirty')
    assert (result.round, len(hashed)) == (1, 2)
    assert result.repaired_bytes == BS
    assert _bytes(dirty) == _bytes(source)


def test_the_first_round_sends_the_data_stretches_in_whole_blocks(tmp_path):
    """The extents a first round queues: each stretch that may hold data
    widened to whole blocks, touching ones merged, cut at the frame size,
    the last block short at the end of the file."""
    from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    path = tmp_path / 'sparse'
    size = 5 * 1024 * 1024 + 77
    with open(path, 'wb') as fh:
        fh.truncate(size)
        for offset in (BS, 2 * BS, 3 * 1024 * 1024 - 10, size - 5):
            fh.seek(offset)
            fh.write(b'x' * 5)
    fd = os.open(path, os.O_RDONLY)
    try:
        holes = delta_sender._hole_map(fd, size)
        holes.ranges = [(BS + 1, 3 * BS - 7), (3 * BS, 3 * BS + 1),
                        (3 * 1024 * 1024 - 10, 3 * 1024 * 1024 + 2),
                        (size - 5, size)]
        got = holes.extents(BS, 2 * BS)
    finally:
        os.close(fd)
    assert got == [(BS, 2 * BS), (3 * BS, BS),
                   (3 * 1024 * 1024 - BS, 2 * BS),
                   (size - 77, 77)]
    assert all(offset % BS == 0 and length <= 2 * BS
               for offset, length in got)


def test_bad_blocks_are_read_from_the_bitmap_whatever_byte_marks_them():
    from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    assert delta_sender._set_bits(bytearray(b'\0\1\0\0\7\1')) == [1, 4, 5]
    assert delta_sender._set_bits(bytearray(5)) == []


def _zero_runs_block_by_block(raw, length, block_size):
    runs = []
    for pos in range(0, length, block_size):
        end = min(pos + block_size, length)
        zero = not any(raw[pos:end])
        if runs and runs[-1][2] == zero:
            runs[-1] = (runs[-1][0], end, zero)
        else:
            runs.append((pos, end, zero))
    return runs


def test_zero_runs_are_the_runs_a_block_by_block_look_finds():
    """The sender's C-searched runs of zero and data blocks, against a
    block-by-block look, over buffers of zero, data and mostly-zero blocks
    (unaligned runs of zeros), with and without a short last block."""
    from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    from overcloud_migrate.dtn.movers.blockpipe import delta_wire
    rng = random.Random(11)
    for _ in range(3000):
        block_size = rng.choice([8, 512, BS])
        blocks = rng.randint(1, 12)
        length = blocks * block_size
        if rng.random() < 0.3:
            length -= rng.randint(1, block_size - 1)
        raw = bytearray(delta_wire.MAX_FRAME)
        for index in range(blocks):
            start = index * block_size
            end = min(start + block_size, length)
            kind = rng.random()
            if kind < 0.3:
                raw[start:end] = rng.randbytes(end - start)
            elif kind < 0.6:
                raw[start:end] = bytes(rng.choice([0, 0, 0, 0, 7])
                                       for _ in range(end - start))
        raw[length:length + 8] = b'\xff' * 8    # past the end: not looked at
        assert delta_sender._zero_runs(raw, length, block_size) == \
            _zero_runs_block_by_block(raw, length, block_size)
