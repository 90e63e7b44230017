"""What the functional modules share: the real ``openstack`` command, a
journal URL, clean-up of a scenario prefix and the views of a cloud that
the tests compare before and after a run.

Each module keeps its own prefix (``PREFIX``): the 3-tier scenario it
builds in devcloud-a, the copies in devcloud-b and the images it leaves
are all named after it, so modules that do not count the whole project
can share one bed, even at the same time.
"""

import contextlib
import json
import os
import subprocess
import sysconfig

import openstack

from overcloud_devcloud import scenario

OPENSTACK = os.path.join(sysconfig.get_path('scripts'), 'openstack')
DEVCLOUD = os.path.join(sysconfig.get_path('scripts'), 'overcloud-devcloud')
#: variables of the caller that would change what a run does
OWN_ENV = ('OVERCLOUD_MIGRATE_FAULT', 'OVERCLOUD_MIGRATE_JOURNAL_URL',
           'OVERCLOUD_MIGRATE_DTN_TOKEN')
#: a bound on one command (not a timed assertion)
COMMAND_TIMEOUT = 780  # under pytest.ini's 900, to report first
#: seconds between two looks at a server or an image the tests wait for
#: (openstacksdk's default is 2)
POLL = 0.5


def servers_of(prefix):
    return ['%s-web' % prefix, '%s-app' % prefix, '%s-db' % prefix]


def journal_url(path):
    """The SQLite journal URL of a file."""
    return 'sqlite:///%s' % path


def overcloud(*args, journal=None, cloud='devcloud-a', fault=None, env=None,
              timeout=COMMAND_TIMEOUT):
    """Run ``openstack [--os-cloud CLOUD] overcloud ARGS`` as an operator
    would; returns (exit code, stdout, stderr).

    ``journal`` (a URL) goes in OVERCLOUD_MIGRATE_JOURNAL_URL, ``fault`` in
    OVERCLOUD_MIGRATE_FAULT; ``env`` adds variables; ``cloud=None`` gives
    no ``--os-cloud``.
    """
    environ = dict(os.environ)
    for name in OWN_ENV:
        environ.pop(name, None)
    if journal:
        environ['OVERCLOUD_MIGRATE_JOURNAL_URL'] = str(journal)
    if fault:
        environ['OVERCLOUD_MIGRATE_FAULT'] = fault
    environ.update(env or {})
    argv = [OPENSTACK] + (['--os-cloud', cloud] if cloud else [])
    try:
        result = subprocess.run(argv + ['overcloud', *args],
                                capture_output=True, text=True, env=environ,
                                timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        # Say where the command was when it was killed.
        err = exc.stderr or b''
        if isinstance(err, bytes):
            err = err.decode(errors='replace')
        raise AssertionError('openstack overcloud %s ran over %s s; its '
                             'stderr ended with:\n%s'
                             % (' '.join(args), timeout, err[-4000:]))
    return result.returncode, result.stdout, result.stderr


def clean(conn, prefix):
    """Delete the scenario ``prefix`` and the images named after it."""
    scenario.delete(conn, prefix)
    for image in conn.image.images(owner=conn.current_project_id):
        if (image.name or '').startswith('om-%s-' % prefix):
            conn.image.delete_image(image)


def dest_state(dst, prefix, keys=('servers', 'images', 'ports')):
    """What a migration of scenario ``prefix`` leaves at ``dst``, by name:
    the ``keys`` of servers, images, ports and networks."""
    views = {
        'servers': lambda: sorted(s.name for s in dst.compute.servers()
                                  if s.name in servers_of(prefix)),
        'images': lambda: sorted(i.name for i in dst.image.images(
            owner=dst.current_project_id)
            if (i.name or '').startswith('om-%s-' % prefix)),
        'ports': lambda: sorted(p.name for p in dst.network.ports()
                                if (p.name or '').startswith(prefix + '-')),
        'networks': lambda: sorted(
            n.name for n in dst.network.networks()
            if (n.name or '').startswith(prefix + '-')),
    }
    return {key: views[key]() for key in keys}


def inventory(conn):
    """Everything in the connection's project a migration could touch, by
    ID (Neutron would show an admin every project's resources: other
    modules work beside this one in theirs)."""
    net = conn.network
    mine = {'project_id': conn.current_project_id}
    return {
        'networks': sorted(n.id for n in net.networks(**mine)),
        'subnets': sorted(s.id for s in net.subnets(**mine)),
        'routers': sorted((r.id, repr(r.routes))
                          for r in net.routers(**mine)),
        'ports': sorted(p.id for p in net.ports(**mine)),
        'groups': sorted(g.id for g in net.security_groups(**mine)),
        'rules': sorted(r.id for r in net.security_group_rules(**mine)),
        'floating_ips': sorted(f.id for f in net.ips(**mine)),
        'keypairs': sorted(k.name for k in conn.compute.keypairs()),
        'flavors': sorted(f.name for f in conn.compute.flavors()),
        'servers': sorted(s.id for s in conn.compute.servers()),
    }


def guest_write(server_id, volume_id, seed, percent=3):
    """Change ``percent`` of a volume's blocks as the server's guest
    would (``overcloud-devcloud guest write``)."""
    subprocess.run([DEVCLOUD, 'guest', 'write', server_id, '--volume',
                    volume_id, '--percent', str(percent), '--seed', seed],
                   check=True, capture_output=True, timeout=300)


def delete_volume(conn, volume, wait):
    """Delete a volume, one Nova no longer has attached included."""
    storage = conn.block_storage
    volume = storage.get_volume(volume)
    if volume.status == 'in-use' and not volume.attachments:
        storage.reset_volume_status(volume, status='available',
                                    attach_status='detached',
                                    migration_status=None)
    storage.delete_volume(volume, ignore_missing=True, cascade=True)
    storage.wait_for_delete(volume, wait=wait, interval=POLL)


def active_file(layout, cloud, volume_id):
    """The file a volume's bytes are read from: after an in-use snapshot
    (and its merge) Cinder's NFS driver may keep them in an overlay that
    its ``.info`` file names; else the base file."""
    base = layout.volume_file(cloud, volume_id)
    info = base.with_name(base.name + '.info')
    if info.exists():
        active = json.loads(info.read_text()).get('active')
        if active:
            return base.with_name(active)
    return base


def check_copy_with_volumes(dst, layout, server_id, fixed_ips, sources,
                            copies, type_map):
    """Assert that destination server ``server_id`` is ACTIVE on
    ``fixed_ips`` with the copies of ``sources`` (source volumes, in
    attachment order; ``copies``: source id -> copy id) attached in that
    order, each of the source's size, bootable flag, (mapped) type, name
    and metadata, and byte-identical on the two clouds' shares (``qemu-img
    compare``: the source may be a qcow2 overlay chain, the copy raw).
    Returns the server."""
    server = dst.compute.get_server(server_id)
    assert server.status == 'ACTIVE'
    assert sorted(a['addr'] for v in server.addresses.values() for a in v
                  if a['OS-EXT-IPS:type'] == 'fixed') == fixed_ips
    attached = sorted(dst.compute.volume_attachments(server),
                      key=lambda a: (len(a.device or ''), a.device or ''))
    assert [a.volume_id for a in attached] == [copies[v.id] for v in sources]
    for source, attachment in zip(sources, attached):
        copy = dst.block_storage.get_volume(attachment.volume_id)
        assert copy.size == source.size
        assert bool(copy.is_bootable) == bool(source.is_bootable)
        assert copy.volume_type == type_map.get(source.volume_type,
                                                source.volume_type)
        assert (copy.name or '') == (source.name or '')
        assert {k: v for k, v in copy.metadata.items()
                if not k.startswith('om_')} == source.metadata
        compare = subprocess.run(
            ['qemu-img', 'compare', '-U',
             str(active_file(layout, 'devcloud-a', source.id)),
             str(active_file(layout, 'devcloud-b', copy.id))],
            capture_output=True, text=True,
            cwd=str(layout.volume_share('devcloud-a')))
        assert compare.returncode == 0, (source.name, compare.stdout,
                                         compare.stderr)
    return server


@contextlib.contextmanager
def volume_project(layout, prefix, dest_type, clean, wait):
    """The 3-tier project with volumes (``prefix``) in devcloud-a, some
    blocks of every volume written as its guest would, and the volume type
    ``dest_type`` at devcloud-b (the destination of ``fast``); yields
    (source, destination, project, layout).  ``clean(conn)`` runs on both
    clouds before and after; the type is deleted after."""
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    try:
        for conn in (src, dst):
            clean(conn)
        if dst.block_storage.find_type(dest_type) is None:
            dst.block_storage.create_type(name=dest_type)
        project = scenario.build(src, prefix, volumes=True, wait=wait)
        for tier in ('db', 'app'):
            for volume in project.volumes[tier]:
                guest_write(project.servers[tier].id, volume.id,
                            volume.name or 'x')
        yield src, dst, project, layout
    finally:
        for conn in (dst, src):
            clean(conn)
        found = dst.block_storage.find_type(dest_type)
        if found is not None:
            dst.block_storage.delete_type(found)
        src.close()
        dst.close()
