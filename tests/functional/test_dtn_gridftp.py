"""The DTN service with REAL GridFTP: two sites on loopback.

Two ``globus-gridftp-server`` processes (anonymous, restricted to their
export) stand for the seed's two DTNs; two ``overcloud-dtn-api`` processes
(one per site) run on ephemeral ports with shared tokens.  A third GridFTP
server writes to a 2 MiB tmpfs (or, when mounting is not allowed, under a
2 MiB file size limit) to make the destination disk fill up.

Missing packages make these tests FAIL with the install command: a DTN
test that silently skips proves nothing.
"""

import contextlib
import ftplib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from overcloud_migrate.dtn import client as dtn_client

APT = ('apt-get install -y globus-gridftp-server-progs '
       'globus-gass-copy-progs curl')
FULL_LIMIT = 2 * 1024 * 1024
#: no cloud here: runs beside any module (tests/functional/conftest.py)
BED_ACCESS = 'none'


def _need(binary, package):
    path = shutil.which(binary) or (
        os.path.exists('/usr/sbin/' + binary) and '/usr/sbin/' + binary)
    if not path:
        pytest.fail('%s (Debian package %s) is missing; install with: %s'
                    % (binary, package, APT), pytrace=False)
    return path


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _wait_port(port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError('%s exited with %s' % (what, proc.returncode))
        with contextlib.suppress(OSError), \
                socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError('%s did not open port %d' % (what, port))


class Processes:
    """Processes this module started; stopped by their own group id."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kwargs):
        proc = subprocess.Popen(argv, start_new_session=True,
                                stdin=subprocess.DEVNULL, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        else:  # the children of a GridFTP server may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self):
        for proc in reversed(self.procs):
            self.stop(proc)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_LIMIT, FULL_LIMIT))


class Site:
    def __init__(self, name, export, gridftp_port):
        self.name = name
        self.export = export
        self.gridftp_port = gridftp_port
        self.url = None
        self.token = None
        self.proc = None

    def client(self):
        return dtn_client.DTNClient(self.url, token=self.token, timeout=30)


def start_gridftp(procs, binary, port, export, logdir, name, **kwargs):
    argv = [binary, '-aa', '-anonymous-user', 'nobody', '-p', str(port),
            '-hostname', '127.0.0.1', '-d', 'ERROR,WARN,INFO',
            '-l', os.path.join(logdir, name + '.log'),
            '-disable-usage-stats', '-restrict-paths', export]
    proc = procs.start(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, **kwargs)
    _wait_port(port, proc, 'globus-gridftp-server ' + name)
    return proc


def start_dtn(procs, site, base, extra=()):
    api = os.path.join(os.path.dirname(sys.executable), 'overcloud-dtn-api')
    if not os.path.exists(api):
        pytest.fail('overcloud-dtn-api is not installed; run: '
                    '.venv/bin/pip install -e . --no-deps', pytrace=False)
    argv = [api, '--host', '127.0.0.1', '--port', '0',
            '--node-name', site.name,
            '--export', 'data=%s' % site.export,
            '--gridftp-url-base', 'ftp://127.0.0.1:%d' % site.gridftp_port,
            '--database-url', 'sqlite:///%s' % os.path.join(
                base, site.name + '.sqlite')]
    if site.token:
        token_file = os.path.join(base, site.name + '.token')
        with open(token_file, 'w') as handle:
            handle.write(site.token + '\n')
        argv += ['--token-file', token_file]
    argv += list(extra)
    log = open(os.path.join(base, site.name + '.stderr'), 'w+')
    proc = procs.start(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.append(
        proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(20)
    match = re.search(r'serving (http://127\.0\.0\.1:\d+)/',
                      lines[0] if lines else '')
    if not match:
        log.seek(0)
        raise AssertionError('overcloud-dtn-api %s did not start: %s'
                             % (site.name, log.read()[-2000:]))
    site.url = match.group(1)
    site.proc = proc
    site.stderr = log
    return site


@contextlib.contextmanager
def dtn_pair(prefix, prepare, exports_of_b):
    """Site A and site B, a DTN service each on the data port of its own,
    one data token between them; A knows B (``exports_of_b(b)``: the
    exports A may address there).  ``prepare(procs, base, name)`` makes a
    site (:class:`Site`) and returns it with the extra service arguments.
    Everything is stopped and removed on the way out."""
    base = tempfile.mkdtemp(prefix=prefix)
    procs = Processes()
    data_token = os.path.join(base, 'data-token')
    with open(data_token, 'w') as handle:
        handle.write(secrets.token_urlsafe(24) + '\n')
    try:
        sites = []
        for name in ('site-a', 'site-b'):
            site, extra = prepare(procs, base, name)
            site.token = secrets.token_urlsafe(24)
            site.data_port = _free_port()
            start_dtn(procs, site, base, extra=[
                *extra, '--data-port', str(site.data_port),
                '--data-token-file', data_token])
            site.token_file = os.path.join(base, name + '.token')
            sites.append(site)
        a, b = sites
        a.client().add_node('site-b', '127.0.0.1', exports_of_b(b),
                            gridftp_port=b.gridftp_port,
                            data_port=b.data_port, endpoint=b.url)
        yield a, b
    finally:
        procs.stop_all()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='module')
def bed():
    gridftp = _need('globus-gridftp-server', 'globus-gridftp-server-progs')
    _need('globus-url-copy', 'globus-gass-copy-progs')
    _need('curl', 'curl')
    base = tempfile.mkdtemp(prefix='dtn-gridftp-')
    os.chmod(base, 0o755)  # the anonymous user (nobody) must traverse it
    procs = Processes()
    mounted = None
    data_token = os.path.join(base, 'data-token')
    with open(data_token, 'w') as handle:
        handle.write(secrets.token_urlsafe(24) + '\n')
    try:
        sites = {}
        for name in ('site-a', 'site-b'):
            export = os.path.join(base, name, 'export', 'data')
            os.makedirs(export)
            os.chmod(os.path.join(base, name), 0o755)
            os.chmod(os.path.join(base, name, 'export'), 0o755)
            os.chmod(export, 0o777)
            site = Site(name, export, _free_port())
            start_gridftp(procs, gridftp, site.gridftp_port, export, base,
                          name)
            site.token = secrets.token_urlsafe(24)
            site.data_port = _free_port()
            sites[name] = start_dtn(procs, site, base, extra=[
                '--data-port', str(site.data_port),
                '--data-token-file', data_token])
        full = os.path.join(base, 'full')
        os.makedirs(full)
        os.chmod(full, 0o777)
        full_port = _free_port()
        mount = subprocess.run(['mount', '-t', 'tmpfs', '-o',
                                'size=%d,mode=0777' % FULL_LIMIT, 'tmpfs',
                                full], capture_output=True, check=False)
        if mount.returncode == 0:
            mounted = full
            start_gridftp(procs, gridftp, full_port, full, base, 'full')
        else:  # not root: the server's writes hit a file size limit
            start_gridftp(procs, gridftp, full_port, full, base, 'full',
                          preexec_fn=_limit_file_size)
        a = sites['site-a'].client()
        b = sites['site-b'].client()
        a.add_node('site-b', '127.0.0.1', {'data': sites['site-b'].export},
                   gridftp_port=sites['site-b'].gridftp_port,
                   data_port=sites['site-b'].data_port,
                   endpoint=sites['site-b'].url)
        a.add_node('full', '127.0.0.1', {'data': full},
                   gridftp_port=full_port)
        b.add_node('site-a', '127.0.0.1', {'data': sites['site-a'].export},
                   gridftp_port=sites['site-a'].gridftp_port)
        yield {'a': sites['site-a'], 'b': sites['site-b'], 'base': base,
               'full': full, 'full_port': full_port,
               'tmpfs': mounted is not None, 'procs': procs}
    finally:
        procs.stop_all()
        if mounted:
            subprocess.run(['umount', mounted], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _write(path, size, random=True):
    with open(path, 'wb') as handle:
        block = 1024 * 1024
        left = size
        while left > 0:
            chunk = min(block, left)
            handle.write(os.urandom(chunk) if random else b'\0' * chunk)
            left -= chunk
    os.chmod(path, 0o644)


def _same(one, two):
    return subprocess.run(['cmp', '-s', one, two]).returncode == 0


def _leftovers(directory):
    return [n for n in os.listdir(directory) if '.part-' in n]


def test_node_registry(bed):
    a = bed['a'].client()
    nodes = {n['name']: n for n in a.nodes()}
    assert set(nodes) == {'site-a', 'site-b', 'full'}
    assert nodes['site-a']['local'] is True
    assert nodes['site-a']['gridftp_port'] == bed['a'].gridftp_port
    assert nodes['site-b']['endpoint'] == bed['b'].url
    a.add_node('temp', '10.9.9.9', {'data': '/export/data'})
    a.delete_node('temp')
    assert 'temp' not in {n['name'] for n in a.nodes()}
    b_nodes = [n['name'] for n in bed['b'].client().nodes()]
    assert b_nodes == ['site-b', 'site-a']


def test_listing_through_gridftp(bed):
    _write(os.path.join(bed['b'].export, 'already-there.dat'), 1000)
    os.makedirs(os.path.join(bed['b'].export, 'backup'), exist_ok=True)
    answer = bed['a'].client().listing('site-b', bed['b'].export + '/')
    assert 'already-there.dat' in answer['entries']
    assert 'backup/' in answer['entries']
    assert answer['url'] == 'ftp://127.0.0.1:%d%s/' % (
        bed['b'].gridftp_port, bed['b'].export)


def test_transfer_is_byte_identical_and_logged(bed):
    source = os.path.join(bed['a'].export, 'vm1.img')
    _write(source, 24 * 1024 * 1024)
    a = bed['a'].client()
    row = a.start_transfer('site-a:%s' % source,
                           'site-b:%s/vm1.img' % bed['b'].export, streams=4)
    done = a.wait_transfer(row['id'], timeout=60, interval=0.2)
    dest = os.path.join(bed['b'].export, 'vm1.img')
    assert done['bytes_done'] == 24 * 1024 * 1024
    assert done['avg_mb_per_s'] > 0
    assert _same(source, dest)
    assert _leftovers(bed['b'].export) == []
    log = a.log(node='site-b', file='vm1.img')
    assert [(r['source'], r['destination'], r['file']) for r in log] == [
        ('site-a', 'site-b', dest)]
    assert log[0]['mb'] == pytest.approx(25.166, abs=0.01)
    assert a.log(since='2999-01-01') == []
    assert 'vm1.img' in bed['b'].client().listing(
        'site-b', bed['b'].export)['entries']


def test_odd_file_names_and_overwrite(bed):
    """Shell metacharacters and spaces are plain names end to end (argv
    lists and quoted URLs), and a second transfer replaces the first."""
    name = "a b; rm -rf x $(id) 'q'%41.dat"
    source = os.path.join(bed['a'].export, name)
    a = bed['a'].client()
    for size in (3000, 5000):
        _write(source, size)
        row = a.start_transfer('site-a:%s' % source,
                               'site-b:%s/' % bed['b'].export, streams=2)
        a.wait_transfer(row['id'], timeout=60, interval=0.1)
        dest = os.path.join(bed['b'].export, name)
        assert os.path.getsize(dest) == size
        assert _same(source, dest)
    assert name in a.listing('site-b', bed['b'].export)['entries']
    assert _leftovers(bed['b'].export) == []


def test_builtin_mover_between_the_two_services(bed):
    """The other mover, through the same API: site-b's service runs the
    builtin receiver on its data port."""
    source = os.path.join(bed['a'].export, 'sparse.img')
    with open(source, 'wb') as handle:
        handle.truncate(16 * 1024 * 1024)
        handle.seek(4 * 1024 * 1024)
        handle.write(os.urandom(1024 * 1024))
    a = bed['a'].client()
    row = a.start_transfer('site-a:%s' % source,
                           'site-b:%s/sparse.img' % bed['b'].export,
                           mover='builtin', streams=4)
    done = a.wait_transfer(row['id'], timeout=60, interval=0.1)
    assert done['mover'] == 'builtin'
    assert _same(source, os.path.join(bed['b'].export, 'sparse.img'))
    # a path the receiver must refuse even if a sender asks for it
    os.symlink('/etc', os.path.join(bed['b'].export, 'etc-link'))
    try:
        row = a.start_transfer('site-a:%s' % source,
                               'site-b:%s/etc-link/x' % bed['b'].export,
                               mover='builtin')
        with pytest.raises(dtn_client.TransferFailed, match='refused'):
            a.wait_transfer(row['id'], timeout=60, interval=0.1)
    finally:
        os.unlink(os.path.join(bed['b'].export, 'etc-link'))
    assert not os.path.exists('/etc/x')


def _seed_commands(dtn_address, source_dir, dest_dir, file_name):
    """The seed's four curl commands, with this bed's addresses."""
    listing = ['curl', '-H', 'Content-Type: application/json', '-X', 'GET',
               '-d', '{"Source":"%s", "Dest":"%s"}' % (source_dir, dest_dir),
               '%s/ftp' % dtn_address]
    transfer = ['curl', '-H', 'Content-Type: application/json', '-X', 'POST',
                '-d', '{"Source":"%s%s", "Dest":"%s%s"}' % (
                    source_dir, file_name, dest_dir, file_name),
                '%s/ftp' % dtn_address]
    nodes = ['curl', '-X', 'GET', dtn_address]
    log = ['curl', '%s/log' % dtn_address]
    return listing, transfer, nodes, log


def _curl(argv, token=None):
    if token:
        argv = argv[:1] + ['-H', 'X-Auth-Token: ' + token] + argv[1:]
    proc = subprocess.run(argv + ['-sS'], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _check_seed_answers(bed, outputs, file_name):
    listing, transfer, nodes, log = outputs
    a, b = bed['a'], bed['b']
    src_url = 'ftp://127.0.0.1:%d%s/' % (a.gridftp_port, a.export)
    dst_url = 'ftp://127.0.0.1:%d%s/' % (b.gridftp_port, b.export)
    blocks = listing.split('\n\n')
    assert blocks[0].splitlines()[0] == src_url
    assert '  %s' % file_name in blocks[0].splitlines()
    assert blocks[1].splitlines()[0] == dst_url
    lines = transfer.splitlines()
    assert lines[0] == 'Source: ' + src_url
    assert lines[1] == 'Dest:   ' + dst_url
    assert lines[2].strip() == file_name
    assert re.match(r'^\s+3000000 bytes\s+[\d.]+ MB/sec avg\s+[\d.]+ '
                    r'MB/sec inst$', lines[-1]), transfer
    assert nodes.splitlines()[0].split() == ['id', 'name', 'address']
    assert 'site-b' in nodes
    assert any(file_name in line and 'site-a' in line
               for line in log.splitlines()[1:])
    assert _same(os.path.join(a.export, file_name),
                 os.path.join(b.export, file_name))


def test_seed_curl_commands_with_a_token(bed):
    a, b = bed['a'], bed['b']
    _write(os.path.join(a.export, '1Gtestfile.dat'), 3_000_000)
    commands = _seed_commands(
        a.url.replace('http://', ''),
        '127.0.0.1:%d%s/' % (a.gridftp_port, a.export),
        '127.0.0.1:%d%s/' % (b.gridftp_port, b.export), '1Gtestfile.dat')
    # without the token the service refuses, as a JSON error
    refused = json.loads(_curl(commands[3]))
    assert refused['error']['code'] == 401
    outputs = [_curl(argv, token=a.token) for argv in commands]
    _check_seed_answers(bed, outputs, '1Gtestfile.dat')


def test_seed_curl_commands_verbatim_with_insecure_no_auth(bed):
    """The seed's commands unchanged work only with --insecure-no-auth."""
    a, b = bed['a'], bed['b']
    open_site = Site('site-a', a.export, a.gridftp_port)
    start_dtn(bed['procs'], open_site, os.path.join(bed['base']),
              extra=['--insecure-no-auth', '--database-url',
                     'sqlite:///%s/open.sqlite' % bed['base']])
    try:
        open_site.client().add_node(
            'site-b', '127.0.0.1', {'data': b.export},
            gridftp_port=b.gridftp_port)
        _write(os.path.join(a.export, '1Gtestfile2.dat'), 3_000_000)
        commands = _seed_commands(
            open_site.url.replace('http://', ''),
            '127.0.0.1:%d%s/' % (a.gridftp_port, a.export),
            '127.0.0.1:%d%s/' % (b.gridftp_port, b.export),
            '1Gtestfile2.dat')
        outputs = [_curl(argv) for argv in commands]
        _check_seed_answers(bed, outputs, '1Gtestfile2.dat')
    finally:
        bed['procs'].stop(open_site.proc)
    open_site.stderr.seek(0)
    assert 'WITHOUT AUTHENTICATION' in open_site.stderr.read()


def test_cancel_mid_way(bed):
    source = os.path.join(bed['a'].export, 'big.img')
    _write(source, 1024 * 1024 * 1024, random=False)
    a = bed['a'].client()
    row = a.start_transfer('site-a:%s' % source,
                           'site-b:%s/big.img' % bed['b'].export, streams=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = _leftovers(bed['b'].export)
        if parts and os.path.getsize(os.path.join(bed['b'].export,
                                                  parts[0])) > 0:
            break
        time.sleep(0.02)
    else:
        pytest.fail('the transfer never started writing')
    a.cancel_transfer(row['id'])
    with pytest.raises(dtn_client.TransferFailed, match='cancelled'):
        a.wait_transfer(row['id'], timeout=30, interval=0.1)
    time.sleep(0.5)
    assert not os.path.exists(os.path.join(bed['b'].export, 'big.img'))
    assert _leftovers(bed['b'].export) == []
    assert a.log(file='big.img') == []
    os.unlink(source)


def test_disk_full_at_the_destination(bed):
    source = os.path.join(bed['a'].export, 'too-big.img')
    _write(source, 6 * 1024 * 1024)
    a = bed['a'].client()
    row = a.start_transfer('site-a:%s' % source,
                           'full:%s/too-big.img' % bed['full'], streams=2)
    with pytest.raises(dtn_client.TransferFailed) as failure:
        a.wait_transfer(row['id'], timeout=90, interval=0.2)
    error = failure.value.transfer['error']
    assert 'globus-url-copy failed' in error
    if bed['tmpfs']:
        assert 'No space left on device' in error
    assert os.listdir(bed['full']) == []
    assert a.log(file='too-big.img') == []


def test_unreachable_dtns(bed):
    a = bed['a'].client()
    gone = _free_port()
    a.add_node('gone', '127.0.0.1', {'data': '/srv/gone'}, gridftp_port=gone)
    try:
        with pytest.raises(dtn_client.DTNClientError,
                           match='answered 502: Listing'):
            a.listing('gone', '/srv/gone')
        row = a.start_transfer('gone:/srv/gone/x',
                               'site-b:%s/x' % bed['b'].export)
        with pytest.raises(dtn_client.TransferFailed,
                           match='127.0.0.1:%d is unreachable' % gone):
            a.wait_transfer(row['id'], timeout=30, interval=0.1)
        source = os.path.join(bed['a'].export, 'small.dat')
        _write(source, 1000)
        row = a.start_transfer('site-a:%s' % source, 'gone:/srv/gone/x')
        with pytest.raises(dtn_client.TransferFailed, match='failed'):
            a.wait_transfer(row['id'], timeout=60, interval=0.1)
    finally:
        a.delete_node('gone')
    with pytest.raises(dtn_client.DTNClientError, match='unreachable'):
        dtn_client.DTNClient('http://127.0.0.1:%d' % gone, token='x' * 20,
                             timeout=3).nodes()


def test_gridftp_refuses_paths_outside_its_restriction(bed):
    """Defence in depth: even a request the service let through (here sent
    straight to GridFTP) cannot leave the export of a remote node."""
    ftp = ftplib.FTP()
    ftp.connect('127.0.0.1', bed['b'].gridftp_port, timeout=10)
    ftp.login()
    try:
        with pytest.raises(ftplib.error_perm, match='Path not allowed'):
            ftp.size('/etc/passwd')
    finally:
        ftp.quit()


def test_openstack_cli_against_real_services(bed, tmp_path):
    token_file = tmp_path / 'token'
    token_file.write_text(bed['a'].token + '\n')
    source = os.path.join(bed['a'].export, 'cli.dat')
    _write(source, 2 * 1024 * 1024)
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env['OS_CLIENT_CONFIG_FILE'] = str(tmp_path / 'none.yaml')
    openstack = os.path.join(os.path.dirname(sys.executable), 'openstack')
    proc = subprocess.run(
        [openstack, 'overcloud', 'dtn', 'transfer', 'site-a:%s' % source,
         'site-b:%s/' % bed['b'].export, '--wait', '--timeout', '60',
         '--dtn-endpoint', bed['a'].url, '--dtn-token-file',
         str(token_file), '-f', 'json'],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row['State'] == 'done' and row['Mover'] == 'gridftp'
    assert _same(source, os.path.join(bed['b'].export, 'cli.dat'))
