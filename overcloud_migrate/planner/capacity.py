"""Destination host capacities: from a file or from Placement data.

A ``--host-capacity`` file is YAML or JSON, either a list of hosts::

    - {name: compute-1, vcpus: 32, ram_mb: 131072, disk_gb: 2000}

or a mapping of host name to capacity (optionally under ``hosts:``)::

    hosts:
      compute-1: {vcpus: 32, ram_mb: 131072, disk_gb: 2000}

The figures are what the planner may still use on each host (free
capacity), not the hardware size.
"""

import math

import yaml

from overcloud_migrate.planner import model

FIELDS = ('vcpus', 'ram_mb', 'disk_gb')
UNITS = {'vcpus': 'vCPU', 'ram_mb': 'MB of RAM', 'disk_gb': 'GB of disk'}
# Larger figures for one host are typos (bytes for MB, ...), not hosts.
LIMITS = {'vcpus': 16384, 'ram_mb': 64 * 1024 * 1024, 'disk_gb': 10 ** 6}
# Placement resource classes for the three figures.
RESOURCE_CLASSES = {'vcpus': 'VCPU', 'ram_mb': 'MEMORY_MB',
                    'disk_gb': 'DISK_GB'}


def _value(value, where, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise model.PlannerError(
            f'{where}: {field} must be a number, not {value!r}.')
    if not math.isfinite(value) or value < 0:
        raise model.PlannerError(
            f'{where}: {field} must be >= 0, not {value!r}.')
    if value != int(value):
        raise model.PlannerError(
            f'{where}: {field} must be a whole number, not {value!r}.')
    if value > LIMITS[field]:
        raise model.PlannerError(
            f'{where}: {field} = {value} is not a believable host size (the '
            f'limit is {LIMITS[field]}); check the unit ({UNITS[field]}).')
    return int(value)


def hosts_from_data(data, source='host capacity'):
    """Validate parsed YAML/JSON data and return a list of Host."""
    if isinstance(data, dict) and set(data) == {'hosts'}:
        data = data['hosts']
    if isinstance(data, dict):
        items = []
        for name, spec in data.items():
            if not isinstance(spec, dict):
                raise model.PlannerError(
                    f'{source}: host {name!r} must map to vcpus, ram_mb and '
                    f'disk_gb.')
            items.append(dict(spec, name=name))
    elif isinstance(data, list):
        items = data
    else:
        raise model.PlannerError(
            f'{source}: expected a list of hosts or a mapping of host name '
            f'to capacity.')
    if not items:
        raise model.PlannerError(f'{source}: no hosts are listed.')
    hosts = []
    seen = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise model.PlannerError(
                f'{source}: host {number} must be a mapping.')
        name = item.get('name')
        if not isinstance(name, str) or not name.strip():
            raise model.PlannerError(
                f'{source}: host {number} has no name.')
        where = f'{source}: host {name!r}'
        unknown = sorted(set(item) - set(FIELDS) - {'name'})
        if unknown:
            raise model.PlannerError(
                f'{where}: unknown field(s) {", ".join(unknown)} (expected '
                f'{", ".join(FIELDS)}).')
        missing = [f for f in FIELDS if f not in item]
        if missing:
            raise model.PlannerError(
                f'{where}: missing {", ".join(missing)}.')
        if name in seen:
            raise model.PlannerError(f'{where} is listed twice.')
        seen.add(name)
        hosts.append(model.Host(name, *(_value(item[f], where, f)
                                        for f in FIELDS)))
    return hosts


def load_host_capacity(path):
    """Read and validate a ``--host-capacity`` file."""
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise model.PlannerError(
            f'Cannot read host capacity file {path}: {exc.strerror}.'
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise model.PlannerError(
            f'Host capacity file {path} is not valid YAML or JSON: '
            f'{exc}.') from None
    return hosts_from_data(data, source=path)


def hosts_from_placement(providers):
    """Free capacity per compute node from Placement data.

    :param providers: a list of ``{'name': ..., 'inventories': {RC:
        {'total', 'reserved', 'allocation_ratio'}}, 'usages': {RC: used}}``
        as gathered by the command; providers without a VCPU inventory
        (nested or sharing providers) are skipped. A missing MEMORY_MB or
        DISK_GB inventory (for example shared storage) is unlimited.
    """
    hosts = []
    for provider in providers:
        inventories = provider.get('inventories') or {}
        usages = provider.get('usages') or {}
        if 'VCPU' not in inventories:
            continue
        free = []
        for field in FIELDS:
            rc = RESOURCE_CLASSES[field]
            inv = inventories.get(rc)
            if inv is None:
                free.append(None)
                continue
            usable = ((inv.get('total', 0) - inv.get('reserved', 0))
                      * inv.get('allocation_ratio', 1.0))
            free.append(max(0, int(usable) - int(usages.get(rc, 0))))
        hosts.append(model.Host(provider['name'], *free))
    if not hosts:
        raise model.PlannerError(
            'The destination Placement service lists no compute node with '
            'a VCPU inventory.')
    return sorted(hosts, key=lambda h: h.name)


def rename_hosts(hosts, names):
    """``hosts`` with each name ``n`` replaced by ``names.get(n, n)``."""
    return sorted((model.Host(names.get(h.name, h.name), h.vcpus, h.ram_mb,
                              h.disk_gb) for h in hosts),
                  key=lambda h: h.name)


def free_on(hosts, names):
    """Summed free capacity of the hosts in ``names`` as a :class:`Host`
    named after the first (``None``, unlimited, wins); ``None`` if no host
    of ``hosts`` is named."""
    chosen = [h for h in hosts if h.name in names]
    if not chosen:
        return None
    totals = []
    for field in FIELDS:
        values = [getattr(h, field) for h in chosen]
        totals.append(None if None in values else sum(values))
    return model.Host(chosen[0].name, *totals)


def check_demand(servers, hosts):
    """Refuse when the servers cannot fit, saying by how much.

    Checks the total of each resource and that every server fits on at
    least one host on its own.
    """
    problems = []
    for i, field in enumerate(FIELDS):
        need = sum(s.demand[i] for s in servers)
        have = sum(h.capacity[i] for h in hosts)
        if need > have:
            problems.append(
                f'{need} {UNITS[field]} needed, {have:g} free '
                f'({need - have:g} short)')
    if problems:
        raise model.CapacityError(
            f'The {len(servers)} servers need more than the '
            f'{len(hosts)} destination hosts offer: '
            + '; '.join(problems) + '.')
    for server in servers:
        if not any(all(d <= c for d, c in zip(server.demand, h.capacity))
                   for h in hosts):
            raise model.CapacityError(
                f'Server {server.name} ({server.vcpus} vCPU, '
                f'{server.ram_mb} MB RAM, {server.disk_gb} GB disk) does '
                f'not fit on any single destination host.')
