"""Compare DTN-to-DTN data paths: GridFTP, scp, rsync, the builtin mover.

Everything runs on this machine: on loopback (default) or, with --netns,
between two network namespaces of our own joined by a veth pair whose rate
tc tbf limits (1 and 10 Gbit/s).  Source and destination live in
``--workdir`` (default /var/tmp: a disk, as on a DTN; ``--tmpfs`` puts them
on /dev/shm); the header names the file system found there (findmnt).

No page-cache illusions on a disk: each source is written, fsynced and
dropped from the page cache (posix_fadvise DONTNEED, that file only)
before every transfer, so every method reads it from the disk; and the
time of every method runs until the destination is on disk (the builtin
mover fsyncs before its commit answers; for the others the benchmark
fsyncs the destination file and counts that time).  CPU-s/GiB: CPU time
(user + system) of every process of the run (the servers on both ends,
read from /proc/PID/stat with their reaped children, and the client
commands) per GiB of logical size.  Three data sets:

* random    -- SIZE bytes of random data;
* vm-holes  -- a VM-like image: a quarter data, the rest holes (sparse);
* vm-zeros  -- the same image with its zeros written out.

``builtin-nohash`` is the builtin mover with the data left out of its
per-chunk Poly1305 tag (what the tag costs; it sends with sendfile).
``builtin-pagecache`` is the builtin mover with O_DIRECT off on both ends
(reads and writes through the page cache, as before 2026-12-06).  ``dd``
measures the disk alone in every run: dd of the random set to the
destination directory, 8 MiB blocks, with O_DIRECT and through the page
cache, both until fdatasync.  ``--baseline DIR`` adds ``builtin-baseline``: the
builtin mover (hash on) from another copy of the code, e.g.
``git archive <rev> overcloud_migrate | tar -x -C DIR``, to compare a
change side by side under the same load.  Each method moves each file
--runs times (interleaved, to spread the noise of a shared machine); the
table shows medians in MB/s (10**6 bytes per second of the file's logical
size, wall clock) and the ratios the issue asks for.  Every destination
is compared with its source (cmp).

    .venv/bin/python benchmarks/dtn_transfer.py [--size 2048] [--runs 3]
    .venv/bin/python benchmarks/dtn_transfer.py --netns --size 512 --runs 1

Needs root for --netns.  Tools: globus-gridftp-server-progs and
globus-gass-copy-progs (GridFTP), openssh-server and openssh-client (scp),
rsync, iperf3; a missing one is named and its method skipped.  Traffic goes
to 127.0.0.1 or to the namespaces' own 10.222.0.0/24 only.
"""

import argparse
import atexit
import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
HERE = pathlib.Path(__file__).resolve()
REPO = HERE.parent.parent
DATASETS = ('random', 'vm-holes', 'vm-zeros')
METHODS = ('gridftp', 'scp', 'rsync-daemon', 'rsync-local', 'builtin',
           'builtin-nohash', 'builtin-pagecache', 'dd')
TOOLS = {
    'gridftp': [('globus-gridftp-server', 'globus-gridftp-server-progs'),
                ('globus-url-copy', 'globus-gass-copy-progs')],
    'scp': [('sshd', 'openssh-server'), ('scp', 'openssh-client'),
            ('ssh-keygen', 'openssh-client')],
    'rsync-daemon': [('rsync', 'rsync')],
    'rsync-local': [('rsync', 'rsync')],
    'builtin': [],
    'builtin-nohash': [],
    'builtin-baseline': [],
    'builtin-pagecache': [],
    'dd': [('dd', 'coreutils')],
    'iperf3': [('iperf3', 'iperf3')],
}
SBIN = ('/usr/sbin', '/sbin')


def which(tool):
    found = shutil.which(tool)
    if found is None:
        for folder in SBIN:
            path = os.path.join(folder, tool)
            if os.access(path, os.X_OK):
                return path
    return found


def medium(path):
    """What file system ``path`` is on, as findmnt (or statfs) tells."""
    try:
        out = subprocess.run(['findmnt', '-n', '-o', 'FSTYPE,SOURCE,TARGET',
                              '-T', str(path)], capture_output=True,
                             text=True, check=True).stdout.split()
        return '%s (%s mounted on %s)' % tuple(out[:3])
    except (OSError, subprocess.CalledProcessError, TypeError):
        return 'unknown file system (findmnt failed)'


def drop_cached(path):
    """Evict one file from the page cache (it was fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


_TICK = os.sysconf('SC_CLK_TCK')


def _proc_stats():
    """pid -> (ppid, user+system+children's CPU ticks) of every process."""
    stats = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as fh:
                fields = fh.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(fields[1]),
                             sum(int(v) for v in fields[11:15]))
    return stats


def cpu_seconds(pids):
    """User + system CPU of ``pids`` and all their descendants (live ones,
    and those reaped: their parents' children's times), and of this
    process's reaped children (the client commands).  GridFTP forks a
    process per session: counting the live tree keeps its CPU in the run
    it belongs to, whenever it is reaped."""
    stats = _proc_stats()
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    seen = set()
    todo = [pid for pid in pids if pid in stats]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (sum(stats[pid][1] for pid in seen) / _TICK
            + usage.ru_utime + usage.ru_stime)


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- hidden helper modes: the builtin mover's two ends in child processes ----

def serve_receiver(args):
    # Block the stop signals before any thread starts: sigwait takes them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.path.insert(0, args.code_root or str(REPO))
    from overcloud_migrate.dtn.movers import blockpipe
    root = pathlib.Path(args.root).resolve()

    def resolve(rel):
        path = (root / rel).resolve()
        if root not in path.parents:
            raise ValueError('%r is outside %s' % (rel, root))
        return path

    token = pathlib.Path(args.token_file).read_text().strip()
    extra = {'direct_io': False} if args.page_cache else {}
    receiver = blockpipe.Receiver(args.host, args.port, resolve, token,
                                  **extra)
    receiver.start()
    print('ready %d' % receiver.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    receiver.stop()


def serve_sender(args):
    """The source DTN's side: a long-running process, as in the service.

    Reads one JSON request per line on stdin, answers one JSON line.
    """
    sys.path.insert(0, args.code_root or str(REPO))
    from overcloud_migrate.dtn.movers import blockpipe
    token = pathlib.Path(args.token_file).read_text().strip()
    print('ready', flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = blockpipe.send(request['source'], request['host'],
                                    request['port'], request['dest'], token,
                                    streams=request['streams'],
                                    chunk_hash=request['chunk_hash'],
                                    **request.get('extra', {}))
            reply = {'seconds': result.seconds,
                     'bytes_on_wire': result.bytes_on_wire}
        except Exception as exc:
            reply = {'error': str(exc)}
        print(json.dumps(reply), flush=True)


# -- data sets ----------------------------------------------------------------

def make_datasets(folder, size):
    """random, vm-holes, vm-zeros of ``size`` bytes in ``folder``."""
    paths = {name: folder / (name + '.img') for name in DATASETS}
    block = MIB
    with open(paths['random'], 'wb') as fh:
        left = size
        while left:
            n = min(left, 64 * MIB)
            fh.write(os.urandom(n))
            left -= n
    # A quarter data: 1 MiB of data in every 4 MiB, scattered like the
    # blocks of a used file system, the rest zeros.
    with open(paths['vm-holes'], 'wb') as holes, \
            open(paths['vm-zeros'], 'wb') as zeros:
        holes.truncate(size)
        for offset in range(0, size, 4 * block):
            data = os.urandom(min(block, size - offset))
            holes.seek(offset)
            holes.write(data)
            zeros.write(data)
            zeros.write(bytes(min(3 * block, max(0, size - offset - block))))
    for path in paths.values():
        os.chmod(path, 0o644)
    return paths


# -- the two hosts: loopback or two namespaces --------------------------------

class Loopback:
    name = 'loopback'
    src_addr = dst_addr = '127.0.0.1'

    def run_in(self, side, argv):
        return list(argv)

    def port(self, side):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            return sock.getsockname()[1]

    def set_rate(self, rate):
        pass

    def close(self):
        pass


class Namespaces:
    """Two namespaces joined by a rate-limited veth pair (ours only)."""

    name = 'netns'
    src_addr = '10.222.0.1'
    dst_addr = '10.222.0.2'

    def __init__(self):
        tag = '%d' % (os.getpid() % 100000)
        self.ns = {'src': 'ocmb-src-' + tag, 'dst': 'ocmb-dst-' + tag}
        self.dev = {'src': 'ocmbs' + tag, 'dst': 'ocmbd' + tag}
        self._next_port = 40000
        self.created = []
        self.etc = []
        try:
            for side in ('src', 'dst'):
                self._ip('netns', 'add', self.ns[side])
                self.created.append(self.ns[side])
                self._etc(self.ns[side])
            self._ip('link', 'add', self.dev['src'], 'type', 'veth', 'peer',
                     'name', self.dev['dst'])
            for side, addr in (('src', self.src_addr), ('dst', self.dst_addr)):
                self._ip('link', 'set', self.dev[side], 'netns', self.ns[side])
                self._ip('-n', self.ns[side], 'addr', 'add', addr + '/24',
                         'dev', self.dev[side])
                self._ip('-n', self.ns[side], 'link', 'set', self.dev[side],
                         'up')
                self._ip('-n', self.ns[side], 'link', 'set', 'lo', 'up')
        except BaseException:
            self.close()
            raise

    def _etc(self, ns):
        """/etc/netns/<ns>/{hosts,resolv.conf}, which ``ip netns exec``
        mounts over /etc: names resolve locally (GridFTP looks its address
        up) and no DNS query leaves the namespace."""
        folder = pathlib.Path('/etc/netns') / ns
        made_parent = not folder.parent.exists()
        folder.mkdir(parents=True)
        self.etc.append((folder, made_parent))
        (folder / 'hosts').write_text(
            '127.0.0.1 localhost %s\n::1 localhost\n%s dtn-src\n%s dtn-dst\n'
            % (socket.gethostname(), self.src_addr, self.dst_addr))
        (folder / 'resolv.conf').write_text('nameserver 127.0.0.1\n')

    def _ip(self, *argv):
        subprocess.run(['ip'] + list(argv), check=True, capture_output=True)

    def run_in(self, side, argv):
        return ['ip', 'netns', 'exec', self.ns[side]] + list(argv)

    def port(self, side):
        self._next_port += 1          # fresh namespaces: every port is free
        return self._next_port

    def set_rate(self, rate):
        """tc tbf on both ends of the veth (rate like '1gbit')."""
        units = {'gbit': 10 ** 9, 'mbit': 10 ** 6}
        bits = int(rate[:-4]) * units[rate[-4:]]
        burst = max(bits // 8 // 250, 256 * 1024)   # a tick's worth at HZ=250
        for side in ('src', 'dst'):
            subprocess.run(
                ['ip', 'netns', 'exec', self.ns[side], 'tc', 'qdisc',
                 'replace', 'dev', self.dev[side], 'root', 'tbf', 'rate', rate,
                 'burst', str(burst), 'latency', '50ms'],
                check=True, capture_output=True)

    def close(self):
        # Deleting a namespace deletes the veth end inside it (and its
        # peer); a pair not moved yet still sits here: delete it too.
        subprocess.run(['ip', 'link', 'del', self.dev['src']],
                       capture_output=True)
        for ns in reversed(self.created):
            subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
        self.created = []
        for folder, made_parent in reversed(self.etc):
            shutil.rmtree(folder, ignore_errors=True)
            if made_parent:
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()
        self.etc = []


# -- servers ------------------------------------------------------------------

class Servers:
    """Every long-running process we start, stopped by its own handle."""

    def __init__(self, hosts, work, token_file):
        self.hosts = hosts
        self.work = work
        self.token_file = token_file
        self.procs = []
        self.ports = {}
        self.sender_procs = {}

    def _start(self, side, argv, name, talk=False, **kwargs):
        """Start a server; ``talk``: we read its stdout (else: to its log)."""
        log('starting %s' % name)
        with open(self.work / (name + '.log'), 'wb') as out:
            proc = subprocess.Popen(
                self.hosts.run_in(side, argv),
                stdout=subprocess.PIPE if talk else out, stderr=out, **kwargs)
        self.procs.append((name, proc))
        return proc

    def _wait_port(self, side, addr, port, name, timeout=15):
        deadline = time.monotonic() + timeout
        probe = self.hosts.run_in(side, [sys.executable, '-c', (
            'import socket,sys;socket.create_connection((sys.argv[1],'
            'int(sys.argv[2])),1).close()'), addr, str(port)])
        while time.monotonic() < deadline:
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError('%s did not listen on %s:%d (see %s)'
                           % (name, addr, port, self.work / (name + '.log')))

    def gridftp(self):
        for side, addr in (('src', self.hosts.src_addr),
                           ('dst', self.hosts.dst_addr)):
            port = self.hosts.port(side)
            name = 'gridftp-' + side
            self._start(side, [which('globus-gridftp-server'), '-aa',
                               '-anonymous-user', 'nobody', '-p', str(port),
                               '-hostname', addr, '-d', 'ERROR',
                               '-l', str(self.work / (name + '-server.log')),
                               '-disable-usage-stats'], name)
            self._wait_port(side, addr, port, name)
            self.ports[name] = port

    def sshd(self):
        keys = self.work / 'ssh'
        keys.mkdir(mode=0o700)
        for key in ('host', 'client'):
            subprocess.run([which('ssh-keygen'), '-q', '-t', 'ed25519', '-N',
                            '', '-f', str(keys / key)], check=True)
        shutil.copy(keys / 'client.pub', keys / 'authorized_keys')
        port = self.hosts.port('dst')
        config = keys / 'sshd_config'
        config.write_text('\n'.join([
            'Port %d' % port, 'ListenAddress %s' % self.hosts.dst_addr,
            'HostKey %s' % (keys / 'host'),
            'AuthorizedKeysFile %s' % (keys / 'authorized_keys'),
            'PidFile %s' % (keys / 'sshd.pid'),
            'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
            'UsePAM no', 'StrictModes no', 'PermitRootLogin prohibit-password',
            'Subsystem sftp internal-sftp', '']))
        # sshd's privilege-separation directory (what the package's tmpfiles
        # entry makes at boot).  Left in place: other sshd runs may use it.
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
        self._start('dst', [which('sshd'), '-D', '-e', '-f', str(config)],
                    'sshd')
        self._wait_port('dst', self.hosts.dst_addr, port, 'sshd')
        self.ports['sshd'] = port
        self.ssh_key = keys / 'client'

    def rsyncd(self, dest):
        port = self.hosts.port('dst')
        config = self.work / 'rsyncd.conf'
        config.write_text('use chroot = no\n[bench]\n  path = %s\n'
                          '  read only = no\n  uid = root\n  gid = root\n'
                          % dest)
        self._start('dst', [which('rsync'), '--daemon', '--no-detach',
                            '--config=%s' % config, '--port=%d' % port,
                            '--address=%s' % self.hosts.dst_addr], 'rsyncd')
        self._wait_port('dst', self.hosts.dst_addr, port, 'rsyncd')
        self.ports['rsyncd'] = port

    def receiver(self, dest, name='builtin', code_root=None,
                 page_cache=False):
        port = self.hosts.port('dst')
        extra = ['--code-root', str(code_root)] if code_root else []
        extra += ['--page-cache'] if page_cache else []
        proc = self._start('dst', [
            sys.executable, str(HERE), '--serve-receiver', '--root', str(dest),
            '--host', self.hosts.dst_addr, '--port', str(port),
            '--token-file', str(self.token_file)] + extra, name + '-receiver',
            talk=True)
        line = proc.stdout.readline().decode()
        if not line.startswith('ready'):
            raise RuntimeError('the %s receiver did not start (see %s)'
                               % (name, self.work / (name + '-receiver.log')))
        self.ports[name] = int(line.split()[1])

    def sender(self, name='builtin', code_root=None):
        extra = ['--code-root', str(code_root)] if code_root else []
        proc = self._start('src', [
            sys.executable, str(HERE), '--serve-sender',
            '--token-file', str(self.token_file)] + extra, name + '-sender',
            talk=True, stdin=subprocess.PIPE)
        if not proc.stdout.readline().startswith(b'ready'):
            raise RuntimeError('the %s sender did not start (see %s)'
                               % (name, self.work / (name + '-sender.log')))
        self.sender_procs[name] = proc

    def send(self, request, name='builtin'):
        proc = self.sender_procs[name]
        proc.stdin.write(json.dumps(request).encode() + b'\n')
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        if 'error' in reply:
            raise RuntimeError('builtin send failed: %s' % reply['error'])
        return reply

    def iperf3(self):
        port = self.hosts.port('dst')
        self._start('dst', [which('iperf3'), '-s', '-p', str(port), '-B',
                            self.hosts.dst_addr], 'iperf3')
        self._wait_port('dst', self.hosts.dst_addr, port, 'iperf3')
        self.ports['iperf3'] = port

    def stop(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []


# -- one transfer per method --------------------------------------------------

class Bench:

    def __init__(self, hosts, servers, dest, streams):
        self.hosts = hosts
        self.servers = servers
        self.dest = dest
        self.streams = streams
        self.notes = {}

    def _timed(self, argv, side='src'):
        start = time.monotonic()
        done = subprocess.run(self.hosts.run_in(side, argv),
                              capture_output=True)
        seconds = time.monotonic() - start
        if done.returncode:
            raise RuntimeError('%s failed: %s' % (
                os.path.basename(argv[0]),
                done.stderr.decode(errors='replace').strip()[-500:]))
        return seconds, done.stdout

    def run(self, method, source, name):
        """Move ``source`` to dest/name; return seconds (wall clock)."""
        target = self.dest / name
        h = self.hosts
        if method == 'gridftp':
            seconds, _ = self._timed([
                which('globus-url-copy'), '-p', str(self.streams), '-fast',
                'ftp://%s:%d%s' % (h.src_addr, self.servers.ports['gridftp-src'],
                                   source),
                'ftp://%s:%d%s' % (h.dst_addr, self.servers.ports['gridftp-dst'],
                                   target)])
        elif method == 'scp':
            seconds, _ = self._timed([
                which('scp'), '-q', '-i', str(self.servers.ssh_key),
                '-P', str(self.servers.ports['sshd']),
                '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
                '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
                str(source), 'root@%s:%s' % (h.dst_addr, target)])
        elif method == 'rsync-daemon':
            seconds, _ = self._timed([
                which('rsync'), '-S', '-W', str(source),
                'rsync://%s:%d/bench/%s' % (h.dst_addr,
                                            self.servers.ports['rsyncd'], name)])
        elif method == 'rsync-local':
            seconds, _ = self._timed([which('rsync'), '-S', '-W', str(source),
                                      str(target)])
        elif method in ('builtin', 'builtin-nohash', 'builtin-baseline',
                        'builtin-pagecache'):
            # The source DTN service is a long-running process: time the
            # request to it, not a Python start-up.
            which_code = ('builtin-baseline' if method == 'builtin-baseline'
                          else 'builtin')
            port = self.servers.ports[which_code]
            extra = {}
            if method == 'builtin-pagecache':
                port = self.servers.ports['builtin-pagecache']
                extra = {'direct_io': False}
            start = time.monotonic()
            result = self.servers.send({
                'source': str(source), 'host': h.dst_addr,
                'port': port, 'dest': name, 'extra': extra,
                'streams': self.streams,
                'chunk_hash': method != 'builtin-nohash'}, which_code)
            seconds = time.monotonic() - start
            if method == 'builtin':
                self.notes.setdefault(('builtin wire MB', name.split('.')[0]),
                                      []).append(result['bytes_on_wire'] / 1e6)
        else:
            raise ValueError(method)
        return seconds

    def iperf3(self, seconds=3):
        _, out = self._timed([
            which('iperf3'), '-c', self.hosts.dst_addr,
            '-p', str(self.servers.ports['iperf3']), '-t', str(seconds),
            '-P', str(self.streams), '-l', '1M', '-J'])
        report = json.loads(out)
        return report['end']['sum_received']['bits_per_second'] / 8 / 1e6


DD = {'dd write, O_DIRECT': ['oflag=direct', 'conv=fdatasync'],
      'dd write, page cache': ['conv=fdatasync']}


def dd_write(source, dest, flags):
    """The disk's own write rate: dd of the random data set to ``dest``
    (8 MiB blocks, until fdatasync), MB/s."""
    target = dest / 'dd.out'
    drop_cached(source)
    start = time.monotonic()
    done = subprocess.run([which('dd'), 'if=%s' % source, 'of=%s' % target,
                           'bs=8M'] + flags, capture_output=True)
    seconds = time.monotonic() - start
    size = os.stat(source).st_size
    target.unlink(missing_ok=True)
    if done.returncode:
        raise RuntimeError(done.stderr.decode(errors='replace')[-300:])
    return size / 1e6 / seconds


def identical(a, b):
    """Byte-for-byte comparison (cmp, or Python where cmp is missing)."""
    if which('cmp'):
        return subprocess.run([which('cmp'), '-s', str(a), str(b)]).returncode == 0
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        while True:
            block_a, block_b = fa.read(8 * MIB), fb.read(8 * MIB)
            if block_a != block_b:
                return False
            if not block_a:
                return True


# -- one scenario (loopback, or one rate between the namespaces) --------------

def scenario(label, hosts, servers, bench, paths, methods, runs, size):
    logical = size / 1e6
    pids = [proc.pid for _, proc in servers.procs]
    figures = {}          # (method, dataset) -> [MB/s]
    alloc = {}
    failures = []
    line = []
    for run in range(runs):
        if 'iperf3' in methods:
            try:
                figures.setdefault(('iperf3', 'random'), []).append(
                    bench.iperf3())
            except RuntimeError as exc:
                failures.append('iperf3: %s' % exc)
        for dataset in DATASETS:
            for method in methods:
                if method == 'dd' and dataset == 'random':
                    for dd_label, flags in DD.items():
                        try:
                            figures.setdefault((dd_label, 'random'),
                                               []).append(dd_write(
                                                   paths['random'],
                                                   bench.dest, flags))
                        except RuntimeError as exc:
                            failures.append('%s: %s' % (dd_label, exc))
                if method in ('iperf3', 'dd'):
                    continue
                name = '%s.%s.%d' % (dataset, method, run)
                target = bench.dest / name
                drop_cached(paths[dataset])
                cpu_before = cpu_seconds(pids)
                try:
                    seconds = bench.run(method, paths[dataset], name)
                    if not method.startswith('builtin'):
                        # until it is on disk (sync FILE: fsync in a child, so
                        # its CPU counts like the builtin mover's own fsync)
                        started = time.monotonic()
                        subprocess.run(['sync', str(target)], check=True)
                        seconds += time.monotonic() - started
                except RuntimeError as exc:
                    failures.append('%s on %s: %s' % (method, dataset, exc))
                    continue
                figures.setdefault(('cpu', method, dataset), []).append(
                    (cpu_seconds(pids) - cpu_before) / (size / 2 ** 30))
                if not identical(paths[dataset], target):
                    failures.append('%s on %s: destination differs from the '
                                    'source' % (method, dataset))
                figures.setdefault((method, dataset), []).append(
                    logical / seconds)
                alloc[(method, dataset)] = os.stat(target).st_blocks * 512
                target.unlink()
                line.append('%s/%s %.0f' % (method, dataset, logical / seconds))
        log('%s run %d: %s' % (label, run + 1, ', '.join(line)))
        line = []
    for dataset in DATASETS:
        wire = bench.notes.pop(('builtin wire MB', dataset), [])
        if wire:
            figures[('builtin MB on the wire', dataset)] = wire
    return figures, alloc, failures


def median(figures, key):
    values = figures.get(key)
    return statistics.median(values) if values else None


def print_table(title, figures, alloc, failures, methods, size, runs):
    print()
    print('== %s: %d MiB files, median of %d run(s), MB/s = 10^6 bytes of '
          'logical size per second (wall clock)' % (title, size // MIB, runs))
    rows = [m for m in methods if m not in ('iperf3', 'dd')]
    if 'builtin' in rows:
        rows += ['builtin MB on the wire']
    width = 24
    print('%-*s %10s %10s %10s   %s' % (width, 'method', *DATASETS,
                                        'dest allocated MiB (r/h/z)'))
    if 'iperf3' in methods:
        value = median(figures, ('iperf3', 'random'))
        print('%-*s %10s %10s %10s' % (width, 'iperf3 -P %d (line)' % 4,
                                       '%.0f' % value if value else 'n/a',
                                       '', ''))
    for method in rows:
        cells = []
        for dataset in DATASETS:
            value = median(figures, (method, dataset))
            cells.append('%.0f' % value if value is not None else 'n/a')
        sizes = '/'.join(
            '%d' % (alloc[(method, d)] // MIB) if (method, d) in alloc else '-'
            for d in DATASETS)
        wire_row = method == 'builtin MB on the wire'
        print('%-*s %10s %10s %10s   %s' % (width, method, *cells,
                                            '' if wire_row else sizes))
    for label in DD:
        value = median(figures, (label, 'random'))
        if value is not None:
            print('%-*s %10.0f   (the disk alone, same run)' % (width, label,
                                                                value))
    print()
    print('CPU seconds per GiB moved (both ends, user + system; median):')
    for method in [m for m in methods if m not in ('iperf3', 'dd')]:
        cells = []
        for dataset in DATASETS:
            value = median(figures, ('cpu', method, dataset))
            cells.append('%.2f' % value if value is not None else 'n/a')
        print('%-*s %10s %10s %10s' % (width, method, *cells))
    for dataset in DATASETS:
        a = median(figures, ('cpu', 'builtin', dataset))
        b = median(figures, ('cpu', 'gridftp', dataset))
        if a is not None and b:
            print('  builtin / gridftp CPU-s per GiB, %-9s %5.2f%s' % (
                dataset, a / b, '  (target <= 0.8: %s)' % (
                    'met' if a / b <= 0.8 else 'NOT met')
                if dataset == 'random' else ''))
    print()
    print('ratios against the targets: median builtin / median peer, and '
          'the median of the per-run ratios (paired):')
    checks = [
        ('builtin / gridftp, random', ('builtin', 'random'),
         ('gridftp', 'random'), 1.2),
        ('builtin / gridftp, vm-holes', ('builtin', 'vm-holes'),
         ('gridftp', 'vm-holes'), 3.0),
        ('builtin / gridftp, vm-zeros', ('builtin', 'vm-zeros'),
         ('gridftp', 'vm-zeros'), 3.0),
        ('builtin / iperf3, random', ('builtin', 'random'),
         ('iperf3', 'random'), 0.5),
        ('builtin-nohash / gridftp, random', ('builtin-nohash', 'random'),
         ('gridftp', 'random'), None),
        ('builtin-nohash / gridftp, vm-zeros', ('builtin-nohash', 'vm-zeros'),
         ('gridftp', 'vm-zeros'), None),
        ('builtin / builtin-baseline, random', ('builtin', 'random'),
         ('builtin-baseline', 'random'), None),
        ('builtin / scp, random', ('builtin', 'random'), ('scp', 'random'),
         None),
        ('builtin / rsync-daemon, random', ('builtin', 'random'),
         ('rsync-daemon', 'random'), None),
    ]
    print('  %-36s %6s %7s' % ('', 'median', 'paired'))
    for label, mine, theirs, target in checks:
        a, b = median(figures, mine), median(figures, theirs)
        if a is None or b is None:
            print('  %-36s    n/a' % label)
            continue
        ratio = a / b
        # Runs are interleaved, so run i of both saw the same neighbours:
        # the median of the per-run ratios is steadier on a noisy machine.
        ours, peers = figures[mine], figures[theirs]
        paired = (statistics.median(x / y for x, y in zip(ours, peers))
                  if len(ours) == len(peers) else None)
        verdict = ''
        if target is not None:
            verdict = '(target >= %.1f: %s)' % (
                target, 'met' if ratio >= target else 'NOT met')
        print('  %-36s %6.2f %7s  %s' % (
            label, ratio, '%.2f' % paired if paired else '-', verdict))
    if failures:
        print('failures:')
        for failure in failures:
            print('  ' + failure)
    else:
        print('every destination was byte-identical to its source')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=2048, metavar='<MiB>',
                        help='Size of each file (default: 2048)')
    parser.add_argument('--runs', type=int, default=3, metavar='<n>',
                        help='Runs per method and data set (default: 3)')
    parser.add_argument('--streams', type=int, default=4, metavar='<n>',
                        help='Parallel streams where a method has them '
                             '(default: 4)')
    parser.add_argument('--workdir', default='/var/tmp', metavar='<dir>',
                        help='Where source and destination live (default: '
                             '/var/tmp, a disk on most hosts)')
    parser.add_argument('--tmpfs', action='store_true',
                        help='Use /dev/shm as --workdir: keeps the disks out')
    parser.add_argument('--methods', default=','.join(METHODS + ('iperf3',)),
                        metavar='<list>', help='Comma-separated subset of '
                        '%s (default: all)' % ', '.join(METHODS + ('iperf3',)))
    parser.add_argument('--netns', action='store_true',
                        help='Run between two network namespaces over a veth '
                             'pair limited to each --rate (needs root)')
    parser.add_argument('--rate', action='append', metavar='<rate>',
                        help='tc tbf rate for --netns; repeatable '
                             '(default: 1gbit and 10gbit)')
    # hidden helper modes (the builtin mover's ends, in child processes)
    parser.add_argument('--page-cache', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--serve-receiver', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--serve-sender', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--root', help=argparse.SUPPRESS)
    parser.add_argument('--host', help=argparse.SUPPRESS)
    parser.add_argument('--port', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--token-file', help=argparse.SUPPRESS)
    parser.add_argument('--code-root', help=argparse.SUPPRESS)
    parser.add_argument('--baseline', metavar='<dir>',
                        help='Also run builtin-baseline: the builtin mover '
                             'from the overcloud_migrate package in <dir>')
    args = parser.parse_args()
    if args.serve_receiver:
        return serve_receiver(args)
    if args.serve_sender:
        return serve_sender(args)

    methods = [m.strip() for m in args.methods.split(',') if m.strip()]
    if args.baseline:
        if not (pathlib.Path(args.baseline) / 'overcloud_migrate').is_dir():
            parser.error('--baseline %s holds no overcloud_migrate package'
                         % args.baseline)
        if 'builtin-baseline' not in methods:
            methods.insert(methods.index('builtin') + 1
                           if 'builtin' in methods else len(methods),
                           'builtin-baseline')
    elif 'builtin-baseline' in methods:
        parser.error('builtin-baseline needs --baseline <dir>')
    unknown = set(methods) - set(METHODS + ('builtin-baseline', 'iperf3'))
    if unknown:
        parser.error('unknown method(s): %s' % ', '.join(sorted(unknown)))
    if args.netns and 'rsync-local' in methods:
        methods.remove('rsync-local')      # not a network transfer
    skipped = []
    for method in list(methods):
        missing = [(tool, pkg) for tool, pkg in TOOLS[method]
                   if which(tool) is None]
        if missing:
            methods.remove(method)
            skipped.append('%s (install %s)' % (method, ', '.join(
                sorted({pkg for _, pkg in missing}))))
    if args.netns and os.geteuid() != 0:
        parser.error('--netns needs root')
    if 'gridftp' in methods and os.geteuid() != 0:
        methods.remove('gridftp')
        skipped.append('gridftp (anonymous servers need root)')
    size = args.size * MIB

    if args.tmpfs:
        args.workdir = '/dev/shm'
    work = pathlib.Path(tempfile.mkdtemp(prefix='dtnbench-', dir=args.workdir))
    atexit.register(shutil.rmtree, work, True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work.chmod(0o755)
    source_dir = work / 'src'
    dest = work / 'dst'
    source_dir.mkdir(mode=0o755)
    dest.mkdir()
    dest.chmod(0o777)           # anonymous GridFTP writes as nobody
    token_file = work / 'token'
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    log('making data sets of %d MiB in %s' % (args.size, source_dir))
    paths = make_datasets(source_dir, size)

    hosts = Namespaces() if args.netns else Loopback()
    servers = Servers(hosts, work, token_file)
    try:
        if 'gridftp' in methods:
            servers.gridftp()
        if 'scp' in methods:
            servers.sshd()
        if 'rsync-daemon' in methods:
            servers.rsyncd(dest)
        if {'builtin', 'builtin-nohash', 'builtin-pagecache'} & set(methods):
            servers.receiver(dest)
            servers.sender()
        if 'builtin-pagecache' in methods:
            servers.receiver(dest, 'builtin-pagecache', page_cache=True)
        if 'builtin-baseline' in methods:
            code_root = pathlib.Path(args.baseline).resolve()
            servers.receiver(dest, 'builtin-baseline', code_root)
            servers.sender('builtin-baseline', code_root)
        if 'iperf3' in methods:
            servers.iperf3()
        bench = Bench(hosts, servers, dest, args.streams)
        rates = (args.rate or ['1gbit', '10gbit']) if args.netns else [None]
        print('dtn_transfer: %s, %d stream(s), %d CPU(s); load average '
              'before: %s'
              % ('two namespaces over a tbf-limited veth' if args.netns
                 else 'loopback 127.0.0.1', args.streams, os.cpu_count(),
                 ' '.join(open('/proc/loadavg').read().split()[:3])))
        where = medium(work)
        print('medium: source and destination in %s on %s; %s' % (
            work, where, 'tmpfs: all in memory (drop and fsync are no-ops)'
            if where.startswith('tmpfs') else 'sources dropped from the page '
            'cache before each transfer, every time counted until the '
            'destination is fsynced'))
        if skipped:
            print('skipped: ' + '; '.join(skipped))
        for rate in rates:
            title = 'loopback' if rate is None else 'netns, veth at %s' % rate
            hosts.set_rate(rate)
            figures, alloc, failures = scenario(
                title, hosts, servers, bench, paths, methods, args.runs, size)
            print_table(title, figures, alloc, failures, methods, size,
                        args.runs)
            sys.stdout.flush()
    finally:
        servers.stop()
        hosts.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
