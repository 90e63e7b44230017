"""--flavor-map: a mapping must name an existing flavor; only the unmapped
case (the same name absent at the destination) creates one, as admin."""

import types

from openstack.compute.v2 import flavor as sdk_flavor
import pytest

from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate


class Compute:
    """find_flavor over a fixed set of destination flavors, by name."""

    def __init__(self, names):
        self.flavors = {n: sdk_flavor.Flavor(id='d-' + n, name=n, vcpus=1,
                                             ram=512, disk=1)
                        for n in names}
        self.created = []

    def find_flavor(self, name, ignore_missing=True):
        return self.flavors.get(name)

    def create_flavor(self, **attrs):
        self.created.append(attrs)
        raise AssertionError('no flavor may be created here')


def plan_with(flavor_map):
    plan = model.Plan(
        flavors=[model.Flavor(id='f1', name='m1.tiny', vcpus=1, ram=512,
                              disk=1)],
        servers=[model.Server(id='v1', name='web', flavor_id='f1')])
    plan.mappings.flavors.update(flavor_map)
    return plan


def problems(plan, dest_names, admin):
    checks = prechecks.Prechecks(
        plan, types.SimpleNamespace(compute=Compute(dest_names)),
        journal=None, source_key='s', dest_key='d', admin=admin)
    checks.flavors()
    return [(p.type, p.name, p.problem) for p in checks.problems]


@pytest.mark.parametrize('admin', [True, False])
def test_a_mapping_to_a_missing_flavor_is_refused(admin):
    assert problems(plan_with({'m1.tiny': 'noflavor'}), ['m1.tiny'],
                    admin) == [
        ('flavor', 'm1.tiny',
         "is mapped to 'noflavor', which does not exist at the destination")]


def test_a_mapping_to_an_existing_flavor_passes():
    assert problems(plan_with({'m1.tiny': 'm1.small'}), ['m1.small'],
                    admin=False) == []


def test_an_unmapped_missing_flavor_needs_admin():
    assert problems(plan_with({}), [], admin=True) == []
    found = problems(plan_with({}), [], admin=False)
    assert [p[:2] for p in found] == [('flavor', 'm1.tiny')]
    assert 'creating it needs admin' in found[0][2]


def replicator(plan, dest_names, admin, dry_run):
    dest = types.SimpleNamespace(compute=Compute(dest_names))
    return replicate.Replicator(plan, dest, journal=None, source_key='s',
                                dest_key='d', admin=admin, dry_run=dry_run)


def test_replication_refuses_the_mapping_too():
    rep = replicator(plan_with({'m1.tiny': 'noflavor'}), ['m1.tiny'],
                     admin=True, dry_run=False)
    with pytest.raises(replicate.ReplicationError,
                       match="Flavor 'm1.tiny' is mapped to 'noflavor', "
                             'which does not exist at the destination'):
        rep.flavors()


def test_the_dry_run_says_an_admin_creates_the_flavor():
    rep = replicator(plan_with({}), [], admin=True, dry_run=True)
    rep.flavors()
    (row,) = rep.rows
    assert (row.type, row.name, row.action) == ('flavor', 'm1.tiny',
                                                'create')
    assert row.status.startswith('planned (admin only')
