import os
import socket
import sys
import time

import pytest

from overcloud_devcloud import process


def test_start_records_pid_and_stop_ends_the_process_group(tmp_path):
    pidfile, log = tmp_path / 'x.pid', tmp_path / 'x.log'
    # A parent that leaves a child in its process group.
    code = ('import subprocess, sys, time; '
            'subprocess.Popen([sys.executable, "-c", "import time; '
            'time.sleep(60)"]); print("started", flush=True); time.sleep(60)')
    pid = process.start('sleeper', [sys.executable, '-c', code], pidfile, log)
    assert process.read_pid(pidfile) == pid
    deadline = time.monotonic() + 10
    while b'started' not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [int(p) for p in os.listdir('/proc') if p.isdigit()
                and _ppid(int(p)) == pid]
    assert children
    assert process.stop(pidfile, timeout=5) == pid
    assert not process.alive(pid)
    assert all(not process.alive(child) for child in children)
    assert not pidfile.exists()
    assert process.stop(pidfile) is None  # stopping twice is harmless


def _ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[1])
    except OSError:
        return None


def test_a_recycled_pid_is_not_ours(tmp_path):
    pidfile = tmp_path / 'x.pid'
    process.write_pidfile(pidfile, os.getpid())
    assert process.read_pid(pidfile) == os.getpid()
    record = pidfile.read_text().replace('"start": ', '"start": 1')
    pidfile.write_text(record)  # same PID, another start time
    assert process.read_pid(pidfile) is None


def test_garbage_pidfile_reads_as_not_running(tmp_path):
    pidfile = tmp_path / 'x.pid'
    pidfile.write_text('not json')
    assert process.read_pid(pidfile) is None
    assert process.read_pid(tmp_path / 'missing.pid') is None


def test_port_in_use_and_holder_name_this_process():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert process.port_in_use(port)
        holder = process.port_holder(port)
        assert holder is not None and holder[0] == os.getpid()
    assert not process.port_in_use(port)
    assert process.port_holder(port) is None


def test_tree_rss_counts_this_process():
    assert process.tree_rss(os.getpid()) > 1024 * 1024


@pytest.mark.parametrize('lines', [1, 3])
def test_tail_returns_last_lines(tmp_path, lines):
    log = tmp_path / 'a.log'
    log.write_text('\n'.join('line %d' % i for i in range(100)))
    assert process.tail(log, lines).splitlines() == [
        'line %d' % i for i in range(100 - lines, 100)]
    assert process.tail(tmp_path / 'none.log') == ''
