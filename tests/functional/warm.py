"""What the warm-migration modules share: two DTN services that export
each cloud's Cinder share, and the CLI calls and views of a warm
migration.

A module takes the DTNs as its own module-scoped fixture by naming it::

    dtns = warm.dtns
    journal = warm.journal
"""

import json
import os

import pytest

from overcloud_devcloud import layout as layout_mod
from tests.functional import helpers
from tests.functional import test_dtn_gridftp as dtn_bed

#: the tag a migration puts on what it makes (volume metadata, images)
MARK = 'om_migration'


@pytest.fixture(scope='module')
def dtns(devcloud):
    """Site A and site B: a DTN service each, exporting a staging
    directory, its cloud's Cinder share, Glance store and the instance
    store of each compute host; A knows B."""
    layout = devcloud.layout
    clouds = {'site-a': 'devcloud-a', 'site-b': 'devcloud-b'}

    def prepare(procs, base, name):
        cloud = clouds[name]
        export = os.path.join(base, name)
        os.makedirs(export)
        site = dtn_bed.Site(name, export, dtn_bed._free_port())
        site.volumes = str(layout.volume_share(cloud))
        site.images = str(layout.image_store(cloud))
        # the Nova instance store of each compute host
        site.disks = {host: str(layout.instances_dir(cloud, host))
                      for host in layout_mod.compute_hosts(cloud)}
        return site, [
            '--export', 'volumes=%s' % site.volumes,
            '--export', 'images=%s' % site.images,
            *[part for index, path in enumerate(site.disks.values())
              for part in ('--export', 'disks%d=%s' % (index, path))]]

    with dtn_bed.dtn_pair('migrate-warm-', prepare, lambda b: {
            'data': b.export, 'volumes': b.volumes}) as pair:
        yield pair


@pytest.fixture
def journal(tmp_path):
    """A journal (its URL) of the test's own."""
    return helpers.journal_url(tmp_path / 'journal.sqlite')


def run(journal, *args, fault=None):
    """``openstack overcloud ARGS`` on the journal at URL ``journal``."""
    return helpers.overcloud(*args, journal=journal, fault=fault)


def dtn_options(a, b):
    return ('--transport', 'dtn', '--dtn-source', a.url, '--dtn-dest', b.url,
            '--dtn-source-dir', a.export, '--dtn-dest-dir', b.export,
            '--dtn-source-token-file', a.token_file,
            '--dtn-dest-token-file', b.token_file, '--dtn-mover', 'builtin',
            '--dtn-source-volumes', a.volumes,
            '--dtn-dest-volumes', b.volumes, '--dtn-source-images', a.images)


def migrate_warm(journal, a, b, server, *extra, fault=None):
    """The first round of a warm migration of ``server`` (a name, or a list
    of them) to devcloud-b through the DTNs ``a`` and ``b`` (JSON
    report)."""
    names = [server] if isinstance(server, str) else list(server)
    return run(journal, 'migrate', *names, '--dest-cloud', 'devcloud-b',
               '--warm', '-f', 'json', *dtn_options(a, b), *extra,
               fault=fault)


def latest(journal):
    """The ID of the journal's newest migration."""
    code, out, err = run(journal, 'migration', 'list', '-f', 'json')
    assert code == 0, err
    return json.loads(out)[-1]['ID']


def rows(stdout, kind):
    """{name: row} of the ``kind`` rows (server, volume) of a JSON
    report."""
    return {r['Name']: r for r in json.loads(stdout) if r['Type'] == kind}


def show(journal, migration):
    code, out, err = run(journal, 'migration', 'show', migration, '-f',
                         'json')
    assert code == 0, err
    return json.loads(out)


def copies(dst, migration):
    """{source volume ID: [destination copies]} of ``migration``."""
    found = {}
    for volume in dst.block_storage.volumes():
        if (volume.metadata or {}).get(MARK) == migration:
            found.setdefault(volume.metadata['om_source_volume'],
                             []).append(volume)
    return found


def status(conn, server_id):
    return conn.compute.get_server(server_id).status
