"""The volume prechecks: volume types after mapping, Cinder quotas at the
destination (and the temporaries' at the source), a destination without
Cinder.  The clouds are small in-memory fakes of the calls made."""

import types

from openstack.block_storage.v3 import type as sdk_type

from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks


class Reply:
    def __init__(self, data, status_code=200):
        self.status_code = status_code
        self._data = data

    def json(self):
        return self._data


class FakeCinder:
    def __init__(self, type_names=('standard', 'fast'), quota=None,
                 endpoint='http://cinder/v3/p'):
        self._types = [sdk_type.Type(id=n, name=n) for n in type_names]
        self.quota = quota or {}
        self.endpoint = endpoint

    def get_endpoint(self):
        return self.endpoint

    def types(self):
        return list(self._types)

    def get(self, path):
        assert path == '/os-quota-sets/p?usage=True'
        return Reply({'quota_set': self.quota})


def _conn(cinder):
    compute = types.SimpleNamespace(get_endpoint_data=lambda: None)
    return types.SimpleNamespace(block_storage=cinder, compute=compute,
                                 current_project_id='p')


def _plan(volume_types=None):
    return model.Plan.from_dict({
        'mappings': {'volume_types': volume_types or {}},
        'flavors': [{'id': 'f', 'name': 'f', 'vcpus': 1, 'ram': 64,
                     'disk': 1}],
        'volumes': [
            {'id': 'root', 'name': 'db-root', 'size': 1, 'bootable': True,
             'volume_type': 'standard'},
            {'id': 'data', 'name': 'db-data', 'size': 2,
             'volume_type': 'gold'},
            {'id': 'log', 'name': 'db-log', 'size': 3,
             'volume_type': 'gold'}],
        'servers': [{'id': 's1', 'name': 'db', 'flavor_id': 'f',
                     'boot_source': 'volume', 'volumes': [
                         {'volume_id': 'root', 'boot_index': 0},
                         {'volume_id': 'data'}, {'volume_id': 'log'}]}],
    })


def _checks(plan, dest, source=None, copies_at_source=True):
    checks = prechecks.Prechecks.__new__(prechecks.Prechecks)
    checks.plan, checks.dest, checks.source = plan, dest, source
    checks.migrated, checks.problems = set(), []
    checks.copies_at_source = copies_at_source
    return checks


def test_a_type_with_no_destination_mapping_is_named_once():
    checks = _checks(_plan(), _conn(FakeCinder()))

    checks.volumes()

    assert [(p.type, p.name, p.problem) for p in checks.problems] == [(
        'volume_type', 'gold',
        "volume type 'gold' has no destination mapping and no type of that "
        "name exists at the destination (volumes 'db-data', 'db-log'); map "
        'it with --volume-type-map gold=<type> (destination types: fast, '
        'standard)')]


def test_a_mapped_type_passes_and_a_bad_mapping_is_named():
    good = _checks(_plan({'gold': 'fast'}), _conn(FakeCinder()))
    good.volumes()
    assert good.problems == []

    bad = _checks(_plan({'gold': 'platinum'}), _conn(FakeCinder()))
    bad.volumes()
    assert [p.problem for p in bad.problems] == [
        "volume type 'gold' is mapped to 'platinum', which does not exist "
        "at the destination (volumes 'db-data', 'db-log')"]


def test_a_destination_without_cinder_is_one_problem():
    checks = _checks(_plan(), _conn(FakeCinder(endpoint=None)))

    checks.volumes()

    assert len(checks.problems) == 1
    assert 'no block-storage (Cinder) service' in checks.problems[0].problem


def test_gigabytes_short_names_the_amount_missing_per_type_too():
    quota = {'volumes': {'limit': 10, 'in_use': 0, 'reserved': 0},
             'gigabytes': {'limit': 4, 'in_use': 1, 'reserved': 0},
             'gigabytes_fast': {'limit': 2, 'in_use': 0, 'reserved': 0},
             'volumes_fast': {'limit': -1, 'in_use': 0, 'reserved': 0}}
    checks = _checks(_plan({'gold': 'fast'}), _conn(FakeCinder(quota=quota)))

    checks.volume_quota()

    assert [(p.name, p.problem) for p in checks.problems] == [
        ('gigabytes', 'needs 6 GiB more at the destination, but only 3 GiB '
                      'of 4 GiB are free: 3 GiB missing'),
        ('gigabytes_fast', 'needs 5 GiB more at the destination, but only 2 '
                           'GiB of 2 GiB are free: 3 GiB missing')]


def test_source_room_for_the_temporary_snapshots_and_volumes():
    quota = {'snapshots': {'limit': 2, 'in_use': 0, 'reserved': 0},
             'volumes': {'limit': -1, 'in_use': 3, 'reserved': 0},
             'gigabytes': {'limit': 100, 'in_use': 6, 'reserved': 0}}
    checks = _checks(_plan({'gold': 'fast'}), None,
                     source=_conn(FakeCinder(quota=quota)))

    checks.source_volume_quota()

    assert [p.name for p in checks.problems] == ['snapshots']
    assert '1 missing' in checks.problems[0].problem


def test_a_warm_migration_needs_no_room_at_the_source():
    quota = {'snapshots': {'limit': 0, 'in_use': 0, 'reserved': 0},
             'volumes': {'limit': 3, 'in_use': 3, 'reserved': 0},
             'gigabytes': {'limit': 6, 'in_use': 6, 'reserved': 0}}
    checks = _checks(_plan({'gold': 'fast'}), None,
                     source=_conn(FakeCinder(quota=quota)),
                     copies_at_source=False)

    checks.source_volume_quota()

    assert checks.problems == []


def test_servers_already_migrated_need_no_room():
    quota = {'gigabytes': {'limit': 0, 'in_use': 0, 'reserved': 0}}
    checks = _checks(_plan(), _conn(FakeCinder(quota=quota)))
    checks.migrated = {'s1'}

    checks.volumes()
    checks.volume_quota()

    assert checks.problems == []
