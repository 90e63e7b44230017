"""Warm against cold migration of a volume-backed server, over a shaped DTN
link, side by side in one run.

Needs root (a network namespace) and a running devcloud with Cinder
(``overcloud-devcloud up``; the bed's home from OVERCLOUD_DEVCLOUD_HOME as
for the other commands).  The destination DTN runs in a network namespace
of its own, joined to this one by a veth pair with ``tc tbf`` at --rate on
both ends (the seed's 1 Gbit/s DTN path; ``netem`` does not exist on this
machine kind, so the link has a rate but no added latency): every byte the
DTNs move between the sites crosses it, and its byte counters say how many.
The source DTN runs here, both export a staging directory and their
cloud's Cinder share (the NFS link between a DTN and its cloud).

For each --sizes GiB: a server in devcloud-a booted from a volume of that
size, filled with random bytes (``overcloud-devcloud guest write --percent
100``), is migrated to devcloud-b

cold
    ``openstack overcloud migrate --transport dtn --dtn-mover builtin``
    with the Cinder shares (our fastest cold path): stop, an empty volume
    at the destination, one DTN round moves every block across the link
    into it, boot;
cold-api (only at --api-sizes)
    the same without the shares, through Cinder's and Glance's APIs: stop,
    in-use snapshot, temporary volume, upload to the source Glance (random
    data does not shrink in qcow2, so it is uploaded again raw), staged on
    the source DTN, across the link, into the destination Glance, volume
    from the image, boot;
warm
    ``migrate --warm`` (the first sync round while it runs), a guest write
    of --changed-mib MiB, ``migration sync`` (a second round), another guest
    write of the same size after the last round, then ``migration
    cutover``: stop, a last round (only the changed blocks cross), boot
    from the synced volume;

each rolled back after it (the source server runs again).  Then, for each
--image-sizes GiB, a server booted from a raw image of random bytes moves
cold (Nova snapshot, staged, across the link, into the destination
Glance, boot) and warm with ``--dest-boot-volume`` twice: the source DTN
reading the root disk file in the compute host's instance store
(``--dtn-source-disks``: no snapshot; the cut-over stops the server, syncs
the root volume from the stopped disk and boots from it; target <= 0.4),
and reading a Nova snapshot of each round in the Glance store
(``--dtn-source-images``: the cut-over snapshots the stopped server
first).  Printed: every
phase's seconds for both flows, the downtime (source stopped -> copy
ACTIVE, from the journal) and warm/cold; the bytes that crossed the link
during the cut-over against the bytes changed after the last round; and,
between the smallest and the largest size, how much each downtime grew.
Targets (issue 12): warm <= 0.2x cold; cut-over link bytes <= 1.2x the
changed bytes; warm growth <= 0.25x cold growth.  The medium of each share
is printed (findmnt).

    sudo .venv/bin/python benchmarks/warm_migrate.py --sizes 2,4,8
"""

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile

import openstack

from overcloud_devcloud import bootstrap
from overcloud_devcloud import layout as layout_mod
from overcloud_migrate.dtn import client as dtn_client

BIN = sysconfig.get_path('scripts')
PREFIX = 'bench-warm'
GIB = 1024 ** 3
MIB = 1024 ** 2
TIMEOUT = 3600
SRC_ADDR, DST_ADDR = '10.223.0.1', '10.223.0.2'


def medium(path):
    found = subprocess.run(['findmnt', '-n', '-o', 'FSTYPE,SOURCE', '-T',
                            str(path)], capture_output=True, text=True)
    return found.stdout.strip() or 'unknown'


class Link:
    """A namespace for the destination DTN, a veth pair to it, tbf."""

    def __init__(self, rate):
        tag = '%d' % (os.getpid() % 100000)
        self.ns = 'ocw-dst-' + tag
        self.here, self.there = 'ocwh' + tag, 'ocwt' + tag
        self.made = False
        try:
            self._ip('netns', 'add', self.ns)
            self.made = True
            self._ip('link', 'add', self.here, 'type', 'veth', 'peer',
                     'name', self.there)
            self._ip('link', 'set', self.there, 'netns', self.ns)
            self._ip('addr', 'add', SRC_ADDR + '/24', 'dev', self.here)
            self._ip('link', 'set', self.here, 'up')
            self._ip('-n', self.ns, 'addr', 'add', DST_ADDR + '/24', 'dev',
                     self.there)
            self._ip('-n', self.ns, 'link', 'set', self.there, 'up')
            self._ip('-n', self.ns, 'link', 'set', 'lo', 'up')
            units = {'gbit': 10 ** 9, 'mbit': 10 ** 6}
            bits = int(rate[:-4]) * units[rate[-4:]]
            burst = str(max(bits // 8 // 250, 256 * 1024))
            for prefix, dev in (([], self.here),
                                (['ip', 'netns', 'exec', self.ns],
                                 self.there)):
                subprocess.run(prefix + ['tc', 'qdisc', 'replace', 'dev', dev,
                                         'root', 'tbf', 'rate', rate, 'burst',
                                         burst, 'latency', '50ms'],
                               check=True, capture_output=True)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ip(*argv):
        subprocess.run(['ip'] + list(argv), check=True, capture_output=True)

    def sent(self):
        """Bytes sent from this side into the link so far."""
        with open('/sys/class/net/%s/statistics/tx_bytes' % self.here) as f:
            return int(f.read())

    def close(self):
        subprocess.run(['ip', 'link', 'del', self.here], capture_output=True)
        if self.made:
            subprocess.run(['ip', 'netns', 'del', self.ns],
                           capture_output=True)
            self.made = False


class Dtn:
    """One overcloud-dtn-api service (in the namespace for site B)."""

    def __init__(self, name, host, export, share, work, data_token,
                 namespace=None, images=None, disks=()):
        self.name, self.host, self.export, self.share = name, host, export, \
            share
        self.images = images
        self.token = secrets.token_urlsafe(24)
        self.token_file = os.path.join(work, name + '.token')
        with open(self.token_file, 'w') as handle:
            handle.write(self.token + '\n')
        self.data_port = 22642 if namespace else _free_port()
        argv = [os.path.join(BIN, 'overcloud-dtn-api'), '--host', host,
                '--port', '22641' if namespace else '0', '--node-name', name,
                '--export', 'data=%s' % export, '--export',
                'volumes=%s' % share] + (
                    ['--export', 'images=%s' % images] if images else []) + [
                    part for index, path in enumerate(disks)
                    for part in ('--export', 'disks%d=%s' % (index, path))] + [
                '--data-port', str(self.data_port),
                '--data-token-file', data_token, '--token-file',
                self.token_file, '--database-url',
                'sqlite:///%s' % os.path.join(work, name + '.sqlite')]
        if namespace:
            argv = ['ip', 'netns', 'exec', namespace] + argv
        self.log = open(os.path.join(work, name + '.log'), 'w+')
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        found = re.search(r'serving (http://[0-9.]+:\d+)/', line)
        if not found:
            raise SystemExit('DTN %s did not start: %r (log %s)'
                             % (name, line, self.log.name))
        self.url = found.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def overcloud(journal, *args):
    env = dict(os.environ, OVERCLOUD_MIGRATE_JOURNAL_URL=journal)
    done = subprocess.run([os.path.join(BIN, 'openstack'), '--os-cloud',
                           'devcloud-a', 'overcloud', *args],
                          capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)
    if done.returncode:
        raise SystemExit('openstack overcloud %s failed (journal %s):\n%s\n%s'
                         % (' '.join(args[:2]), journal, done.stdout[-3000:],
                            done.stderr[-3000:]))
    return done.stdout


def guest_write(server_id, percent, seed, block_size=4096):
    done = subprocess.run([os.path.join(BIN, 'overcloud-devcloud'), 'guest',
                           'write', server_id, '--percent', repr(percent),
                           '--seed', seed, '--block-size', str(block_size),
                           '-f', 'json'], check=True, capture_output=True,
                          text=True, timeout=TIMEOUT)
    return json.loads(done.stdout)


class Bench:

    def __init__(self, args):
        self.args = args
        self.layout = layout_mod.Layout()
        self.src = openstack.connect(cloud='devcloud-a')
        self.dst = openstack.connect(cloud='devcloud-b')
        self.work = tempfile.mkdtemp(prefix='warm-bench-',
                                     dir=args.workdir)
        os.chmod(self.work, 0o755)
        # kept after the run: `openstack overcloud migration show` reads it
        self.journal = 'sqlite:///%s' % os.path.join(
            args.workdir or tempfile.gettempdir(),
            'warm-bench-%d.sqlite' % os.getpid())

    # -- the world ---------------------------------------------------------

    def network(self):
        net = self.src.network
        found = net.find_network(PREFIX + '-net')
        if found is None:
            found = net.create_network(name=PREFIX + '-net')
            net.create_subnet(network_id=found.id, ip_version=4,
                              cidr='10.98.0.0/24', name=PREFIX + '-subnet')
        return found

    def server(self, size_gib):
        src = self.src
        image = src.image.find_image(bootstrap.IMAGE_NAME,
                                     ignore_missing=False)
        flavor = src.compute.find_flavor('m1.small', ignore_missing=False)
        network = self.network()
        port = src.network.create_port(network_id=network.id,
                                       name='%s-port' % PREFIX)
        server = src.compute.create_server(
            name='%s-%d' % (PREFIX, size_gib), flavor_id=flavor.id,
            networks=[{'port': port.id}], block_device_mapping=[{
                'boot_index': 0, 'uuid': image.id, 'source_type': 'image',
                'destination_type': 'volume', 'volume_size': size_gib,
                'delete_on_termination': True}])
        server = src.compute.wait_for_server(server, wait=TIMEOUT,
                                             interval=0.5)
        # Random bytes in every block: nothing for the data paths to skip.
        guest_write(server.id, 100, 'fill', block_size=4 * MIB)
        return server

    def clean(self):
        """What this benchmark (or an interrupted run of it) left in
        either cloud: servers, their volumes, ports and the network."""
        for conn in (self.dst, self.src):
            for server in list(conn.compute.servers()):
                if server.name.startswith(PREFIX):
                    conn.compute.delete_server(server)
                    conn.compute.wait_for_delete(server, wait=TIMEOUT)
            for volume in list(conn.block_storage.volumes()):
                if (volume.metadata or {}).get('om_migration') and \
                        volume.status == 'available' and \
                        (volume.name or '').startswith(PREFIX):
                    conn.block_storage.delete_volume(volume)
            for image in list(conn.image.images(
                    owner=conn.current_project_id)):
                if (image.name or '').startswith(PREFIX + '-image'):
                    conn.image.delete_image(image, ignore_missing=True)
            network = conn.network.find_network(PREFIX + '-net')
            if network is not None:
                for port in list(conn.network.ports(network_id=network.id)):
                    conn.network.delete_port(port)
                conn.network.delete_network(network)

    def image_server(self, size_gib):
        """A server booted from a raw image of ``size_gib`` GiB of random
        bytes (its root disk is that image's copy on the compute host)."""
        src = self.src
        path = os.path.join(self.work, 'image.raw')
        with open(path, 'wb') as handle:
            for _ in range(size_gib * GIB // (4 * MIB)):
                handle.write(os.urandom(4 * MIB))
        with open(path, 'rb') as data:
            image = src.image.create_image(
                name='%s-image-%d' % (PREFIX, size_gib), disk_format='raw',
                container_format='bare', data=data, wait=True)
        os.unlink(path)
        flavor = src.compute.find_flavor('m1.small', ignore_missing=False)
        port = src.network.create_port(network_id=self.network().id,
                                       name='%s-port' % PREFIX)
        server = src.compute.create_server(
            name='%s-image-%d' % (PREFIX, size_gib), flavor_id=flavor.id,
            image_id=image.id, networks=[{'port': port.id}])
        server = src.compute.wait_for_server(server, wait=TIMEOUT,
                                             interval=0.5)
        return server, image

    def drop_server(self, server):
        self.src.compute.delete_server(server, ignore_missing=True)
        self.src.compute.wait_for_delete(server, wait=TIMEOUT)
        for port in self.src.network.ports(name='%s-port' % PREFIX):
            self.src.network.delete_port(port)

    # -- the flows ---------------------------------------------------------

    def dtn_options(self, shares):
        a, b = self.sites
        options = ['--transport', 'dtn', '--dtn-source', a.url,
                   '--dtn-dest', b.url, '--dtn-source-dir', a.export,
                   '--dtn-dest-dir', b.export, '--dtn-source-token-file',
                   a.token_file, '--dtn-dest-token-file', b.token_file,
                   '--dtn-mover', 'builtin', '--timeout', '3000']
        if shares:
            options += ['--dtn-source-volumes', a.share,
                        '--dtn-dest-volumes', b.share,
                        '--dtn-source-images', a.images]
        return options

    def disks(self, server):
        """--dtn-source-disks for ``server``: the disk files of devcloud's
        compute hosts are <instances of the host>/<server ID>.disk."""
        host = self.src.compute.get_server(server.id).compute_host
        return ['--dtn-source-disks', os.path.join(str(
            self.layout.instances_dir('devcloud-a', host)), '{server}.disk')]

    def row(self, out):
        return next(r for r in json.loads(out) if r['Type'] == 'server')

    def migration(self):
        listed = json.loads(overcloud(self.journal, 'migration', 'list',
                                      '-f', 'json'))
        return listed[-1]['ID']

    def cold(self, server, shares=True):
        out = overcloud(self.journal, 'migrate', server.name,
                        '--dest-cloud', 'devcloud-b', '-f', 'json',
                        *self.dtn_options(shares))
        row = self.row(out)
        overcloud(self.journal, 'migration', 'rollback', self.migration())
        return {'downtime': row['Downtime (s)'], 'phases': row['Phases']}

    def warm(self, server, changed_percent, *extra):
        overcloud(self.journal, 'migrate', server.name, '--dest-cloud',
                  'devcloud-b', '--warm', '-f', 'json',
                  *self.dtn_options(True), *extra)
        migration = self.migration()
        # seeds of this migration's own: each run changes other blocks
        guest_write(server.id, changed_percent, 'between-' + migration)
        overcloud(self.journal, 'migration', 'sync', migration, '-f', 'json')
        written = guest_write(server.id, changed_percent, 'after-' + migration)
        before = self.link.sent()
        out = overcloud(self.journal, 'migration', 'cutover', migration,
                        '-f', 'json')
        crossed = self.link.sent() - before
        row = self.row(out)
        overcloud(self.journal, 'migration', 'rollback', migration)
        return {'downtime': row['Downtime (s)'], 'phases': row['Phases'],
                'changed': written['bytes_changed'], 'crossed': crossed}

    # -- the run -----------------------------------------------------------

    def run(self):
        args = self.args
        data_token = os.path.join(self.work, 'data-token')
        with open(data_token, 'w') as handle:
            handle.write(secrets.token_urlsafe(24) + '\n')
        self.clean()
        self.link = Link(args.rate)
        self.sites = []
        try:
            for name, host, cloud, namespace in (
                    ('site-a', '127.0.0.1', 'devcloud-a', None),
                    ('site-b', DST_ADDR, 'devcloud-b', self.link.ns)):
                export = os.path.join(self.work, name)
                os.makedirs(export)
                os.chmod(export, 0o777)
                self.sites.append(Dtn(
                    name, host, export, str(self.layout.volume_share(cloud)),
                    self.work, data_token, namespace,
                    images=None if namespace else str(
                        self.layout.image_store(cloud)),
                    disks=() if namespace else [
                        str(self.layout.instances_dir(cloud, host))
                        for host in layout_mod.compute_hosts(cloud)]))
            a, b = self.sites
            dtn_client.DTNClient(a.url, token=a.token).add_node(
                'site-b', DST_ADDR, {'data': b.export, 'volumes': b.share},
                data_port=b.data_port, endpoint=b.url)
            results = {}
            changed_bytes = args.changed_mib * MIB
            for size in args.sizes:
                server = self.server(size)
                try:
                    percent = 100.0 * changed_bytes / (size * GIB)
                    results[size] = {'cold': self.cold(server),
                                     'warm': self.warm(server, percent)}
                    if size in args.api_sizes:
                        results[size]['cold-api'] = self.cold(server, False)
                finally:
                    self.drop_server(server)
                self.report_size(size, results[size])
            self.report(results)
            for size in args.image_sizes:
                server, image = self.image_server(size)
                try:
                    percent = 100.0 * changed_bytes / (size * GIB)
                    result = {'cold': self.cold(server, False),
                              'warm': self.warm(server, percent,
                                                '--dest-boot-volume',
                                                *self.disks(server))}
                    snapshots = self.warm(server, percent,
                                          '--dest-boot-volume')
                finally:
                    self.drop_server(server)
                    self.src.image.delete_image(image, ignore_missing=True)
                print('\nimage-booted server (%d GiB raw image of random '
                      'data), cold through Glance against warm with '
                      '--dest-boot-volume, the source DTN reading the root '
                      'disk in the instance store (--dtn-source-disks; '
                      'target <= 0.4):' % size)
                self.report_size(size, result, 'root disk', 0.4)
                print('  warm from a Nova snapshot each round '
                      '(--dtn-source-images): downtime %.1f s, warm/cold '
                      '%.2f, cut-over link bytes / changed %.2f' % (
                          snapshots['downtime'], snapshots['downtime']
                          / result['cold']['downtime'],
                          snapshots['crossed'] / snapshots['changed']))
                self.phases('snap', snapshots['phases'])
        finally:
            for site in self.sites:
                site.stop()
            self.link.close()
            self.clean()
            shutil.rmtree(self.work, ignore_errors=True)

    @staticmethod
    def phases(label, phases):
        print('  %-5s %s' % (label, ', '.join('%s %.1f s' % (k, v)
                                             for k, v in phases.items())))

    def report_size(self, size, result, what='volume', target=0.2):
        cold, warm = result['cold'], result['warm']
        print('\n%d GiB %s of random data: downtime cold %.1f s, warm '
              '%.1f s, warm/cold %.2f (target <= %.1f); cut-over link bytes '
              '%d / changed %d = %.2f (target <= 1.2)' % (
                  size, what, cold['downtime'], warm['downtime'],
                  warm['downtime'] / cold['downtime'], target,
                  warm['crossed'],
                  warm['changed'], warm['crossed'] / warm['changed']))
        self.phases('cold', cold['phases'])
        self.phases('warm', warm['phases'])
        api = result.get('cold-api')
        if api:
            print('  cold through the APIs: downtime %.1f s, warm/that %.2f'
                  % (api['downtime'], warm['downtime'] / api['downtime']))
            self.phases('api', api['phases'])
        sys.stdout.flush()

    def report(self, results):
        sizes = sorted(results)
        print('\n%-8s %10s %10s %9s %14s %14s %6s' % (
            'size', 'cold s', 'warm s', 'warm/cold', 'cutover bytes',
            'changed bytes', 'ratio'))
        for size in sizes:
            cold, warm = results[size]['cold'], results[size]['warm']
            print('%-8s %10.1f %10.1f %9.2f %14d %14d %6.2f' % (
                '%d GiB' % size, cold['downtime'], warm['downtime'],
                warm['downtime'] / cold['downtime'], warm['crossed'],
                warm['changed'], warm['crossed'] / warm['changed']))
        if len(sizes) > 1:
            low, high = sizes[0], sizes[-1]
            grow_cold = results[high]['cold']['downtime'] - \
                results[low]['cold']['downtime']
            grow_warm = results[high]['warm']['downtime'] - \
                results[low]['warm']['downtime']
            print('\nfrom %d to %d GiB at the same changed bytes: cold '
                  'downtime grew %.1f s, warm %.1f s: %.2f of cold\'s '
                  'growth (target <= 0.25)' % (
                      low, high, grow_cold, grow_warm,
                      grow_warm / grow_cold if grow_cold else float('nan')))
        print('\nlink: veth with tc tbf %s each way; media: source share %s, '
              'destination share %s, DTN staging %s; load average %s' % (
                  self.args.rate,
                  medium(self.layout.volume_share('devcloud-a')),
                  medium(self.layout.volume_share('devcloud-b')),
                  medium(self.work), ' '.join(
                      open('/proc/loadavg').read().split()[:3])))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='2,4,8',
                        type=lambda v: [int(x) for x in v.split(',') if x],
                        help='Volume sizes in GiB, comma-separated '
                             '(default: 2,4,8)')
    parser.add_argument('--changed-mib', type=int, default=82,
                        help='MiB the guest changes after the last round '
                             '(and between the two rounds) at every size '
                             '(default: 82, 2%% of 4 GiB)')
    parser.add_argument('--api-sizes', default='4',
                        type=lambda v: [int(x) for x in v.split(',') if x],
                        help='Sizes (GiB) at which the cold migration '
                             'through the APIs runs too (default: 4; empty: '
                             'none)')
    parser.add_argument('--image-sizes', default='4',
                        type=lambda v: [int(x) for x in v.split(',') if x],
                        help='Sizes (GiB) of the image-booted server moved '
                             'cold and warm with --dest-boot-volume '
                             '(default: 4; empty: none)')
    parser.add_argument('--rate', default='1gbit',
                        help='tc tbf rate of the link (default: 1gbit)')
    parser.add_argument('--workdir', default=None,
                        help='Where the DTNs stage (default: the system '
                             'temporary directory; give one on a disk)')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error('needs root (a network namespace)')
    Bench(args).run()


if __name__ == '__main__':
    main()
