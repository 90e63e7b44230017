"""What the functional modules share: the real ``openstack`` command, a
journal URL, clean-up of a scenario prefix and the views of a cloud that
the tests compare before and after a run.

Each module keeps its own prefix (``PREFIX``): the 3-tier scenario it
builds in devcloud-a, the copies in devcloud-b and the images it leaves
are all named after it, so modules that do not count the whole project
can share one bed, even at the same time.
"""

import os
import subprocess
import sysconfig

from overcloud_devcloud import scenario

OPENSTACK = os.path.join(sysconfig.get_path('scripts'), 'openstack')
#: variables of the caller that would change what a run does
OWN_ENV = ('OVERCLOUD_MIGRATE_FAULT', 'OVERCLOUD_MIGRATE_JOURNAL_URL',
           'OVERCLOUD_MIGRATE_DTN_TOKEN')
#: a bound on one command (not a timed assertion)
COMMAND_TIMEOUT = 900
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
    result = subprocess.run(argv + ['overcloud', *args], capture_output=True,
                            text=True, env=environ, timeout=timeout)
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
    """Everything at a cloud a migration could touch, by ID."""
    net = conn.network
    return {
        'networks': sorted(n.id for n in net.networks()),
        'subnets': sorted(s.id for s in net.subnets()),
        'routers': sorted((r.id, repr(r.routes)) for r in net.routers()),
        'ports': sorted(p.id for p in net.ports()),
        'groups': sorted(g.id for g in net.security_groups()),
        'rules': sorted(r.id for r in net.security_group_rules()),
        'floating_ips': sorted(f.id for f in net.ips()),
        'keypairs': sorted(k.name for k in conn.compute.keypairs()),
        'flavors': sorted(f.name for f in conn.compute.flavors()),
        'servers': sorted(s.id for s in conn.compute.servers()),
    }
