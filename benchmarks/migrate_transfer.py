"""Moving an image and a server on devcloud: ours against the seed's way.

Needs a running devcloud (``overcloud-devcloud up``; OS_CLIENT_CONFIG_FILE
from ``overcloud-devcloud env``).  With a VM-like raw image (default 1 GiB,
about 75% zero blocks) it measures, side by side in one run:

(a) the ``glance`` transport (source download streamed into the destination
    upload) against a bare download and a bare upload of the same bytes;
(b) the same against the seed's store-and-forward (download to a file, copy
    it to the other controller with scp, as the seed did, here through a
    throwaway sshd on loopback, or with ``--seed-copy local`` a plain file
    copy, the seed's best case; upload the copy);
(c) the downtime of one server (source stopped -> destination ACTIVE) with
    ``openstack overcloud migrate`` against the seed-style sequential flow
    (stop, snapshot, download, copy, upload, boot).

Prints figures and the ratios the issue sets as targets: (a) >= 0.9,
(b) >= 1.8, (c) <= 0.5.  Absolute numbers vary with the machine's load;
ratios come from one run.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import openstack
import throwaway_sshd

from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.transports import glance as glance_transport

OPENSTACK = os.path.join(sysconfig.get_path('scripts'), 'openstack')
CHUNK = 1024 * 1024
PREFIX = 'bench'


def vm_image(path, size, data_fraction=0.25):
    """A raw disk image: an MBR, then 1 MiB data blocks spread among zeros."""
    blocks = size // CHUNK
    step = max(1, round(1 / data_fraction))
    with open(path, 'wb') as handle:
        for index in range(blocks):
            if index % step == 0:
                block = bytearray(os.urandom(CHUNK))
                if index == 0:
                    block[0:512] = bytes(512)
                    block[446:462] = (b'\x00' * 4 + b'\x83' + b'\x00' * 3 +
                                      (2048).to_bytes(4, 'little') +
                                      (size // 512 - 2048).to_bytes(4,
                                                                    'little'))
                    block[510:512] = b'\x55\xaa'
                handle.write(block)
            else:
                handle.write(bytes(CHUNK))


def timed(fn):
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result


def upload_file(conn, name, path):
    image = conn.image.create_image(name=name, disk_format='raw',
                                    container_format='bare')
    with open(path, 'rb') as handle:
        # A file object: requests sends it with a Content-Length, the
        # fastest way into Glance (chunked encoding is ~1/3 slower).
        response = conn.image.put(
            '/images/%s/file' % image.id, data=handle,
            headers={'Content-Type': 'application/octet-stream'})
    if response.status_code >= 300:
        raise RuntimeError('upload of %s failed: HTTP %d %s' % (
            name, response.status_code, response.text[:200]))
    return conn.image.wait_for_status(conn.image.get_image(image.id),
                                      'active', failures=['killed'],
                                      wait=600)


def download(conn, image, path=None):
    response = conn.image.get('/images/%s/file' % image.id, stream=True)
    count = 0
    with (open(path, 'wb') if path else open(os.devnull, 'wb')) as out:
        for chunk in response.iter_content(CHUNK):
            out.write(chunk)
            count += len(chunk)
    return count


def stream(src, dst, image, name):
    dest = dst.image.create_image(name=name, disk_format='raw',
                                  container_format='bare')
    glance_transport.GlanceTransport().transfer(
        transport_base.ImageRef(src, image.id, image.size),
        transport_base.ImageRef(dst, dest.id), lambda *a: None)
    return dst.image.wait_for_status(dst.image.get_image(dest.id), 'active',
                                     failures=['killed'], wait=600)


def openstack_cli(*args, journal):
    env = dict(os.environ, OVERCLOUD_MIGRATE_JOURNAL_URL=journal)
    result = subprocess.run([OPENSTACK, *args], capture_output=True,
                            text=True, env=env)
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return result.stdout


def build_server(src, image):
    net = src.network.create_network(name='%s-net' % PREFIX)
    subnet = src.network.create_subnet(network_id=net.id, ip_version=4,
                                       cidr='10.99.0.0/24',
                                       name='%s-subnet' % PREFIX)
    port = src.network.create_port(network_id=net.id, name='%s-port' % PREFIX,
                                   fixed_ips=[{'subnet_id': subnet.id,
                                               'ip_address': '10.99.0.10'}])
    flavor = src.compute.find_flavor('m1.small', ignore_missing=False)
    server = src.compute.create_server(name='%s-vm' % PREFIX,
                                       flavor_id=flavor.id,
                                       image_id=image.id,
                                       networks=[{'port': port.id}])
    return src.compute.wait_for_server(server, wait=600)


def copier(scp):
    """The seed's copy to the other controller: ``scp`` (an argv prefix) or,
    when None, a local file copy."""
    def copy(source, target):
        if scp is None:
            shutil.copyfile(source, target)
        else:
            subprocess.run([*scp, source, 'root@127.0.0.1:%s' % target],
                           check=True)
    return copy


def seed_style(src, dst, server, workdir, copy):
    """The seed's flow: every step after the previous, through files."""
    compute = src.compute
    compute.stop_server(server)
    compute.wait_for_server(server, status='SHUTOFF', wait=600)
    stopped = time.monotonic()
    phases = {}
    mark = [stopped]

    def lap(name):
        now = time.monotonic()
        phases[name] = round(now - mark[0], 3)
        mark[0] = now

    snap = compute.create_server_image(server, '%s-seed-snap' % PREFIX,
                                       wait=False)
    snap = src.image.wait_for_status(src.image.get_image(snap.id), 'active',
                                     failures=['killed'], wait=600)
    lap('snapshot')
    local = os.path.join(workdir, 'seed-download.img')
    download(src, snap, local)
    lap('download')
    remote = os.path.join(workdir, 'seed-copy.img')
    copy(local, remote)                     # to the other controller
    lap('copy')
    dest_image = upload_file(dst, '%s-seed-image' % PREFIX, remote)
    lap('upload')
    port = dst.network.find_port('%s-port' % PREFIX, ignore_missing=False)
    flavor = dst.compute.find_flavor('m1.small', ignore_missing=False)
    new = dst.compute.create_server(name='%s-seed-vm' % PREFIX,
                                    flavor_id=flavor.id,
                                    image_id=dest_image.id,
                                    networks=[{'port': port.id}])
    dst.compute.wait_for_server(new, wait=600)
    lap('boot')
    active = time.monotonic()
    return active - stopped, phases


def cleanup(src, dst):
    for conn in (src, dst):
        for server in conn.compute.servers():
            if server.name.startswith(PREFIX + '-'):
                conn.compute.delete_server(server)
                conn.compute.wait_for_delete(server, wait=300)
        for image in conn.image.images(owner=conn.current_project_id):
            if (image.name or '').startswith((PREFIX + '-', 'om-%s-' % PREFIX)):
                conn.image.delete_image(image)
        for port in conn.network.ports():
            if (port.name or '').startswith(PREFIX + '-'):
                conn.network.delete_port(port)
        for net in conn.network.networks():
            if (net.name or '').startswith(PREFIX + '-'):
                for port in conn.network.ports(network_id=net.id):
                    conn.network.delete_port(port)
                conn.network.delete_network(net)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--skip-downtime', action='store_true',
                        help='only (a) and (b)')
    parser.add_argument('--seed-copy', choices=('scp', 'local'),
                        default='scp',
                        help="the seed's copy between controllers: scp "
                             'through a throwaway sshd on loopback (default), '
                             'or a local file copy')
    args = parser.parse_args()
    with (throwaway_sshd.sshd() if args.seed_copy == 'scp'
          else contextlib.nullcontext()) as scp:
        return measure(args, copier(scp))


def measure(args, copy):
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    cleanup(src, dst)
    size = args.size_mib * CHUNK
    figures = {}
    with tempfile.TemporaryDirectory(prefix='om-bench-',
                                     dir=os.environ.get('TMPDIR')) as work:
        path = os.path.join(work, 'vm.img')
        vm_image(path, size)
        try:
            image = upload_file(src, '%s-image' % PREFIX, path)
            mb = size / 1e6
            t_down, _ = timed(lambda: download(src, image))
            t_up, _ = timed(lambda: upload_file(dst, '%s-upload' % PREFIX,
                                                path))
            t_stream, copied = timed(lambda: stream(src, dst, image,
                                                    '%s-stream' % PREFIX))
            assert copied.hash_value == image.hash_value, 'stream damaged'

            def store_and_forward():
                local = os.path.join(work, 'saf.img')
                download(src, image, local)
                copy(local, local + '.copy')
                result = upload_file(dst, '%s-saf' % PREFIX, local + '.copy')
                os.unlink(local)
                os.unlink(local + '.copy')
                return result
            t_saf, saf = timed(store_and_forward)
            assert saf.hash_value == image.hash_value
            figures.update({
                'bare download MB/s': mb / t_down,
                'bare upload MB/s': mb / t_up,
                'glance stream MB/s': mb / t_stream,
                'seed store-and-forward MB/s': mb / t_saf,
            })
            if not args.skip_downtime:
                server = build_server(src, image)
                journal = 'sqlite:///%s' % os.path.join(work, 'j.sqlite')
                out = openstack_cli(
                    '--os-cloud', 'devcloud-a', 'overcloud', 'migrate',
                    server.name, '--dest-cloud', 'devcloud-b', '-f', 'json',
                    journal=journal)
                row = [r for r in json.loads(out) if r['Type'] == 'server'][0]
                figures['downtime ours (s)'] = float(row['Downtime (s)'])
                figures['phases ours'] = row['Phases']
                # Undo ours, keep the network world for the seed's run.
                for found in dst.compute.servers():
                    if found.name == server.name:
                        dst.compute.delete_server(found)
                        dst.compute.wait_for_delete(found, wait=300)
                src.compute.start_server(server)
                deadline = time.monotonic() + 300
                while src.compute.get_server(server.id).status != 'ACTIVE':
                    if time.monotonic() > deadline:
                        raise RuntimeError('the source did not restart')
                    time.sleep(1)
                server = src.compute.get_server(server.id)
                downtime, phases = seed_style(src, dst, server, work, copy)
                figures['downtime seed-style (s)'] = downtime
                figures['phases seed-style'] = phases
        finally:
            cleanup(src, dst)
    targets = [
        ('(a) stream / slower of bare download and upload',
         figures['glance stream MB/s'] / min(figures['bare download MB/s'],
                                             figures['bare upload MB/s']),
         '>= 0.9'),
        ('(b) stream / seed store-and-forward',
         figures['glance stream MB/s'] /
         figures['seed store-and-forward MB/s'], '>= 1.8'),
    ]
    if 'downtime ours (s)' in figures:
        seed_downtime = figures['downtime seed-style (s)']
        targets.append(('(c) downtime ours / seed-style',
                        figures['downtime ours (s)'] / seed_downtime,
                        '<= 0.5'))
        # Both flows snapshot the stopped server through Nova and boot
        # the copy from Glance; whatever moves the bytes, their downtime
        # cannot be shorter than those two phases.
        ours = figures['phases ours']
        fixed = ours.get('snapshot', 0) + ours.get('boot', 0)
        targets.append(('(c) floor: (snapshot + boot) / seed-style',
                        fixed / seed_downtime, '-'))
    print('image: %d MiB raw, ~75%% zero blocks; the seed copies with %s'
          % (args.size_mib, args.seed_copy))
    for name, value in figures.items():
        print('%-34s %s' % (name, value if isinstance(value, dict)
                            else '%.1f' % value))
    print()
    print('%-50s %7s %8s' % ('ratio', 'value', 'target'))
    for name, value, target in targets:
        print('%-50s %7.2f %8s' % (name, value, target))
    return 0


if __name__ == '__main__':
    sys.exit(main())
