"""The destination boot of a migration on devcloud: where the time goes.

Needs a running devcloud (``overcloud-devcloud up``; OS_CLIENT_CONFIG_FILE
from ``overcloud-devcloud env``).  Boots ``--servers`` servers at once in
devcloud-b the way the ``boot`` phase does (each on a port made first,
from an image of ``--size-mb`` MB), ``--rounds`` times with each way of
waiting, alternating so that both see the same machine load:

``before``  openstacksdk's ``wait_for_server`` as the phase used to wait
            (GET /servers/{id} every 2 s; each makes Nova ask Neutron for
            the server's security groups);
``after``   ``workflow.tasks.wait_until_built``, as the phase waits now
            (the same status read every ``BUILD_POLL_INTERVAL`` s).

For each boot it splits the phase into Nova's own build (``created`` ->
``launched_at``, which no client can shorten) and ours (the create call
before it and the time until we noticed ACTIVE after it), and prints the
medians and the after/before ratios.  Absolute numbers follow the
machine's load; the ratios come from alternating rounds of one run.
"""

import argparse
import concurrent.futures
import datetime
import os
import statistics
import sys
import time

import openstack

from overcloud_migrate.workflow import tasks

PREFIX = 'bench-boot'


def _when(stamp):
    """Nova's timestamps (ISO 8601, UTC, with or without Z/fraction)."""
    stamp = stamp.rstrip('Z')
    if '+' not in stamp[10:]:
        stamp += '+00:00'
    return datetime.datetime.fromisoformat(stamp).timestamp()


def clean(conn):
    for server in conn.compute.servers(name='^%s-' % PREFIX):
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=600)
    for port in conn.network.ports():
        if (port.name or '').startswith(PREFIX):
            conn.network.delete_port(port)
    for net in conn.network.networks(name=PREFIX + '-net'):
        conn.network.delete_network(net)
    for image in conn.image.images():
        if image.name == PREFIX + '-image':
            conn.image.delete_image(image)


def setup(conn, size_mb):
    image = conn.image.create_image(
        name=PREFIX + '-image', disk_format='raw', container_format='bare',
        visibility='private', data=os.urandom(size_mb * 1024 * 1024))
    conn.image.wait_for_status(image, 'active', wait=600)
    net = conn.network.create_network(name=PREFIX + '-net')
    conn.network.create_subnet(network_id=net.id, ip_version=4,
                               cidr='10.199.0.0/24', name=PREFIX + '-subnet')
    flavor = conn.compute.find_flavor('m1.tiny', ignore_missing=False)
    return image, net, flavor


def boot_one(conn, mode, number, image, net, flavor, timeout):
    port = conn.network.create_port(network_id=net.id,
                                    name='%s-port-%d' % (PREFIX, number))
    start = time.time()
    server = conn.compute.create_server(
        name='%s-%s-%d' % (PREFIX, mode, number), flavor_id=flavor.id,
        image_id=image.id, networks=[{'port': port.id}])
    created = time.time()
    if mode == 'before':
        conn.compute.wait_for_server(server, status='ACTIVE',
                                     failures=['ERROR'], wait=timeout)
    else:
        tasks.wait_until_built(conn.compute, server, timeout)
    noticed = time.time()
    server = conn.compute.get_server(server.id)
    nova_start = _when(server.created_at)
    nova_end = _when(server.launched_at)
    conn.compute.delete_server(server)
    return {'phase': noticed - start, 'create_call': created - start,
            'nova_build': nova_end - nova_start,
            'noticed_after': noticed - nova_end}


def one_round(conn, mode, count, image, net, flavor, timeout):
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        found = list(pool.map(
            lambda n: boot_one(conn, mode, n, image, net, flavor, timeout),
            range(count)))
    for server in list(conn.compute.servers(name='^%s-' % PREFIX)):
        conn.compute.wait_for_delete(server, wait=timeout)
    for port in conn.network.ports(network_id=net.id):
        if (port.name or '').startswith(PREFIX):
            conn.network.delete_port(port)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cloud', default='devcloud-b')
    parser.add_argument('--servers', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--size-mb', type=int, default=8)
    parser.add_argument('--timeout', type=int, default=900)
    args = parser.parse_args(argv)
    conn = openstack.connect(cloud=args.cloud)
    clean(conn)
    image, net, flavor = setup(conn, args.size_mb)
    results = {'before': [], 'after': []}
    try:
        for number in range(args.rounds):
            for mode in (('before', 'after') if number % 2 == 0
                         else ('after', 'before')):
                found = one_round(conn, mode, args.servers, image, net,
                                  flavor, args.timeout)
                results[mode] += found
                print('round %d %-6s phase %s s' % (
                    number + 1, mode, ', '.join('%.1f' % f['phase']
                                                for f in found)),
                      file=sys.stderr, flush=True)
    finally:
        clean(conn)
    keys = ('phase', 'nova_build', 'create_call', 'noticed_after')
    medians = {mode: {k: statistics.median(r[k] for r in rows)
                      for k in keys} for mode, rows in results.items()}
    print('%d servers at once, %d MB image, %d rounds each, medians (s):'
          % (args.servers, args.size_mb, args.rounds))
    print('%-26s %8s %8s %8s' % ('', 'before', 'after', 'ratio'))
    labels = {'phase': 'boot phase (ours, total)',
              'nova_build': "Nova's build (created->launched)",
              'create_call': 'create call',
              'noticed_after': 'ACTIVE noticed after'}
    for key in keys:
        before, after = medians['before'][key], medians['after'][key]
        print('%-34s %8.2f %8.2f %8s' % (
            labels[key], before, after,
            '%.2f' % (after / before) if before > 0 else '-'))
    for mode in ('before', 'after'):
        ours = medians[mode]['create_call'] + medians[mode]['noticed_after']
        print('%s: our share of the phase (create call + noticing) %.2f s '
              'of %.2f s (%.0f%%)' % (mode, ours, medians[mode]['phase'],
                                       100 * ours / medians[mode]['phase']))


if __name__ == '__main__':
    main()
