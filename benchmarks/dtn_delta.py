"""A sync between two DTN services: what round 2 costs after a 2 % change.

Two real ``overcloud-dtn-api`` services (source node ``a`` and destination
node ``b``, each with its builtin data port), on loopback or, with
--netns, in two network namespaces joined by a veth pair limited by tc tbf
(the harness of ``benchmarks/dtn_transfer.py``).  In ``--workdir`` (a disk
by default; the header names the medium, from findmnt):

1. a file of SIZE MiB of random data and an empty (sparse) destination
   volume of the same size;
2. round 1 of the sync (everything crosses);
3. 2 % of its 4 KiB blocks rewritten at random (``--change``);
4. round 2: the time, the bytes that crossed the link (the veth's own
   counters, ``/sys/class/net/<veth>/statistics/{tx,rx}_bytes`` in the
   source namespace) against the bytes changed (target: at most 1.2);
5. a full transfer of the same file with the builtin mover, in the same
   run, for comparison.

Before each phase both files are written back and dropped from the page
cache, so each reads its disk.  Every destination is compared with its
source at the end.

    .venv/bin/python benchmarks/dtn_delta.py [--size 512] [--netns --rate 1gbit]
    .venv/bin/python benchmarks/dtn_delta.py --netns --rate 1gbit --size 4096

Needs root for --netns.  Traffic goes to 127.0.0.1 or to the namespaces'
own 10.222.0.0/24 only.
"""

import argparse
import atexit
import json
import os
import pathlib
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve()
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

import dtn_transfer  # noqa: E402  (the shared harness, next to this file)

MIB = 1024 * 1024
BLOCK = 4096
KEY = 'bench-vol'


# -- the hidden driver: talks to DTN a from inside its namespace ------------

def serve_driver(args):
    """Read one JSON command per line, answer one JSON line."""
    sys.path.insert(0, str(REPO))
    from overcloud_migrate.dtn import client as dtn_client
    token = pathlib.Path(args.token_file).read_text().strip()
    client = dtn_client.DTNClient(args.api, token=token, timeout=600)
    print('ready', flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop('op')
        try:
            if op == 'add_node':
                reply = client.add_node(**request)
            elif op == 'forget':
                reply = client.forget_sync(request['key'])
            else:
                started = time.monotonic()
                if op == 'sync':
                    row = client.start_sync(**request)
                else:
                    row = client.start_transfer(**request)
                row = client.wait_transfer(row['id'], interval=0.05)
                reply = dict(row, wall=time.monotonic() - started)
        except dtn_client.DTNClientError as exc:
            reply = {'error': str(exc)}
        print(json.dumps(reply), flush=True)


# -- the two services -----------------------------------------------------------

class Services:
    def __init__(self, hosts, work):
        self.hosts = hosts
        self.work = work
        self.procs = []
        self.token = work / 'api-token'
        self.token.write_text(secrets.token_hex(32))
        self.data_token = work / 'data-token'
        self.data_token.write_text(secrets.token_hex(32))
        for path in (self.token, self.data_token):
            path.chmod(0o600)

    def dtn(self, side, name, export, address):
        api_port = self.hosts.port(side)
        data_port = self.hosts.port(side)
        state = self.work / ('state-' + name)
        argv = self.hosts.run_in(side, [
            sys.executable, '-m', 'overcloud_migrate.dtn.service',
            '--host', '0.0.0.0' if isinstance(
                self.hosts, dtn_transfer.Namespaces) else '127.0.0.1',
            '--port', str(api_port), '--node-name', name,
            '--export', 'data=%s' % export,
            '--gridftp-url-base', 'ftp://%s:%d' % (address, data_port),
            '--data-port', str(data_port),
            '--data-token-file', str(self.data_token),
            '--token-file', str(self.token),
            '--database-url', 'sqlite:///%s/db.sqlite' % state,
            '--sync-state-dir', str(state / 'syncs'),
            '--log-level', 'WARNING'])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                stderr=open(self.work / (name + '.log'), 'w'),
                                text=True, cwd=str(REPO))
        self.procs.append(proc)
        line = proc.stdout.readline()
        if not line.startswith('overcloud-dtn-api: serving'):
            raise RuntimeError('DTN %s did not start; see %s' % (
                name, self.work / (name + '.log')))
        return api_port, data_port

    def driver(self, side, api_port):
        argv = self.hosts.run_in(side, [
            sys.executable, str(HERE), '--serve-driver',
            '--api', 'http://127.0.0.1:%d' % api_port,
            '--token-file', str(self.token)])
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True,
                                cwd=str(REPO))
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == 'ready'
        self._driver = proc

    def call(self, op, **request):
        self._driver.stdin.write(json.dumps(dict(request, op=op)) + '\n')
        self._driver.stdin.flush()
        reply = json.loads(self._driver.stdout.readline())
        if 'error' in reply and reply['error'] and 'state' not in reply:
            raise RuntimeError('%s failed: %s' % (op, reply['error']))
        return reply

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                if proc.stdin:
                    proc.stdin.close()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class LinkCounter:
    """Bytes through the source side's veth (both directions)."""

    def __init__(self, hosts):
        self.hosts = hosts

    def read(self):
        if not isinstance(self.hosts, dtn_transfer.Namespaces):
            return None
        figures = []
        for what in ('tx_bytes', 'rx_bytes'):
            out = subprocess.run(self.hosts.run_in('src', [
                'cat', '/sys/class/net/%s/statistics/%s' % (
                    self.hosts.dev['src'], what)]), capture_output=True,
                text=True, check=True).stdout
            figures.append(int(out))
        return tuple(figures)


def write_random(path, size):
    with open(path, 'wb') as fh:
        left = size
        while left:
            n = min(left, 64 * MIB)
            fh.write(os.urandom(n))
            left -= n
    path.chmod(0o644)


def change_blocks(path, size, fraction, seed):
    """Rewrite ``fraction`` of the 4 KiB blocks at random; their count."""
    count = -(-size // BLOCK)
    rng = random.Random(seed)
    chosen = rng.sample(range(count), max(1, int(count * fraction)))
    fd = os.open(path, os.O_WRONLY)
    try:
        for index in sorted(chosen):
            os.pwrite(fd, os.urandom(min(BLOCK, size - index * BLOCK)),
                      index * BLOCK)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(chosen)


def identical(a, b):
    return subprocess.run(['cmp', '-s', str(a), str(b)]).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=512, metavar='<MiB>',
                        help='Size of the file (default: 512; the issue\'s '
                             'figure is 4096)')
    parser.add_argument('--change', type=float, default=2.0,
                        metavar='<percent>',
                        help='Blocks rewritten before round 2 (default: 2)')
    parser.add_argument('--streams', type=int, default=4, metavar='<n>',
                        help='Parallel streams (default: 4)')
    parser.add_argument('--workdir', default='/var/tmp', metavar='<dir>',
                        help='Where the files live (default: /var/tmp, a '
                             'disk on most hosts)')
    parser.add_argument('--tmpfs', action='store_true',
                        help='Use /dev/shm as --workdir')
    parser.add_argument('--netns', action='store_true',
                        help='Run the two DTNs in two network namespaces '
                             'over a veth pair limited to --rate (root)')
    parser.add_argument('--rate', default='1gbit', metavar='<rate>',
                        help='tc tbf rate for --netns (default: 1gbit)')
    parser.add_argument('--serve-driver', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--api', help=argparse.SUPPRESS)
    parser.add_argument('--token-file', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_driver:
        return serve_driver(args)
    if args.netns and os.geteuid() != 0:
        parser.error('--netns needs root')
    if args.tmpfs:
        args.workdir = '/dev/shm'
    size = args.size * MIB

    work = pathlib.Path(tempfile.mkdtemp(prefix='dtndelta-',
                                         dir=args.workdir))
    atexit.register(shutil.rmtree, work, True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work.chmod(0o755)
    export_a, export_b = work / 'export-a', work / 'export-b'
    export_a.mkdir()
    export_b.mkdir()
    source, volume = export_a / 'disk.img', export_b / 'volume.img'
    full = export_b / 'full.img'
    dtn_transfer.log('writing %d MiB of random data to %s' % (args.size,
                                                               source))
    write_random(source, size)
    with open(volume, 'wb') as fh:
        fh.truncate(size)

    hosts = dtn_transfer.Namespaces() if args.netns else \
        dtn_transfer.Loopback()
    services = Services(hosts, work)
    counter = LinkCounter(hosts)
    try:
        if args.netns:
            hosts.set_rate(args.rate)
        api_a, _ = services.dtn('src', 'a', export_a, hosts.src_addr)
        _, data_b = services.dtn('dst', 'b', export_b, hosts.dst_addr)
        services.driver('src', api_a)
        services.call('add_node', name='b', address=hosts.dst_addr,
                      exports={'data': str(export_b)}, gridftp_port=2811,
                      data_port=data_b)
        print('dtn_delta: %s, %d MiB of random data, %d stream(s), %d '
              'CPU(s); load average before: %s' % (
                  'two namespaces over a veth limited to %s' % args.rate
                  if args.netns else 'loopback 127.0.0.1', args.size,
                  args.streams, os.cpu_count(),
                  ' '.join(open('/proc/loadavg').read().split()[:3])))
        print('medium: %s on %s; files written back and dropped from the '
              'page cache before each phase' % (work, dtn_transfer.medium(
                  work)))

        def phase(label, op, **request):
            for path in (source, volume):
                dtn_transfer.drop_cached(path)
            before = counter.read()
            row = services.call(op, **request)
            after = counter.read()
            link = None if before is None else (after[0] - before[0],
                                                after[1] - before[1])
            if row.get('state') != 'done':
                raise RuntimeError('%s: %s' % (label, row.get('error')))
            return row, link

        def link_text(link):
            if link is None:
                return 'link n/a (loopback)'
            return 'link %d B out + %d B back' % link

        sync = dict(source='a:%s' % source, dest='b:%s' % volume, key=KEY,
                    streams=args.streams)
        row1, link1 = phase('round 1', 'sync', **sync)
        print('round 1:   %7.2f s  sent %d B (changed %d, repaired %d); %s'
              % (row1['wall'], row1['bytes'], row1['changed_bytes'],
                 row1['repaired_bytes'], link_text(link1)))
        started = time.monotonic()
        blocks = change_blocks(source, size, args.change / 100.0, seed=1)
        print('change:    %7.2f s  %d of %d blocks of %d B rewritten '
              '(%.1f %%)' % (time.monotonic() - started, blocks,
                             -(-size // BLOCK), BLOCK, args.change))
        row2, link2 = phase('round 2', 'sync', **sync)
        print('round 2:   %7.2f s  sent %d B (changed %d, repaired %d); %s'
              % (row2['wall'], row2['bytes'], row2['changed_bytes'],
                 row2['repaired_bytes'], link_text(link2)))
        rowf, linkf = phase('full', 'transfer', source='a:%s' % source,
                            dest='b:%s' % full, mover='builtin',
                            streams=args.streams)
        print('full copy: %7.2f s  builtin mover, %d B file; %s'
              % (rowf['wall'], size, link_text(linkf)))
        changed = row2['changed_bytes']
        if link2 is not None and changed:
            print('round 2 link bytes / changed bytes: %.3f out, %.3f out+back '
                  '(target <= 1.2)' % (link2[0] / changed,
                                       sum(link2) / changed))
        print('round 2 payload / changed bytes: %.3f' % (
            row2['bytes'] / changed if changed else float('nan')))
        print('round 2 seconds / full copy seconds: %.3f' % (
            row2['wall'] / rowf['wall']))
        same = identical(source, volume) and identical(source, full)
        print('destinations identical to the source: %s' % same)
        return 0 if same else 1
    finally:
        services.stop()
        hosts.close()


if __name__ == '__main__':
    sys.exit(main())
