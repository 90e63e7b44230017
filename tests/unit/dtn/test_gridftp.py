"""The gridftp mover's own logic; real transfers are in
tests/functional/test_dtn_gridftp.py."""

import io
import threading

import pytest

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import gridftp


def test_check_names_the_package_when_the_binary_is_missing(monkeypatch,
                                                            tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))
    mover = gridftp.GridftpMover()
    with pytest.raises(base.MoverUnavailable,
                       match='globus-url-copy is not installed.*'
                             'globus-gass-copy-progs'):
        mover.check()
    request = base.TransferRequest('/a/f', '127.0.0.1', 2811, 'f')
    with pytest.raises(base.MoverUnavailable):
        mover.transfer(request, lambda n: None, threading.Event())
    with pytest.raises(base.MoverUnavailable, match='not installed'):
        gridftp.list_directory('ftp', '127.0.0.1', 2811, '/a/')


def test_argv_is_a_list_with_the_options():
    mover = gridftp.GridftpMover(binary='/usr/bin/globus-url-copy')
    request = base.TransferRequest('/a/f', 'h', 2811, 'f', streams=8,
                                   options={'tcp_buffer_size': 4194304})
    argv = mover.argv(request, 'ftp://s:2811/a/f', 'ftp://h:2811/b/f')
    assert argv[0] == '/usr/bin/globus-url-copy'
    assert argv[1:4] == ['-vb', '-p', '8']
    assert '-fast' in argv and '-rst' in argv
    assert argv[argv.index('-tcp-bs') + 1] == '4194304'
    assert argv[-2:] == ['ftp://s:2811/a/f', 'ftp://h:2811/b/f']
    slow = base.TransferRequest('/a/f', 'h', 2811, 'f', streams=1,
                                options={'fast': False,
                                         'restart_retries': 0})
    argv = mover.argv(slow, 's', 'd')
    assert '-fast' not in argv and '-rst' not in argv


def test_urls_quote_odd_names():
    assert gridftp.url('ftp', '10.0.0.1', 2811, '/x/a b;$(id)?#.img') == \
        'ftp://10.0.0.1:2811/x/a%20b%3B%24%28id%29%3F%23.img'


def test_progress_lines_are_parsed():
    # what globus-url-copy -vb prints (carriage returns between updates)
    output = (b'Source: ftp://s:2811/x/\nDest:   ftp://d:2811/y/\n  f\n\n'
              b'     52428800 bytes        50.00 MB/sec avg        50.00 MB/'
              b'sec inst\r    1000000000 bytes      112.20 MB/sec avg      '
              b'112.62 MB/sec inst\r\n')
    seen = []
    state = {'bytes': 0}
    gridftp.GridftpMover._read_progress(io.BufferedReader(io.BytesIO(output)),
                                        seen.append, state)
    assert seen == [52428800, 1000000000]
    assert state['bytes'] == 1000000000
