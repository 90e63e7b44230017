"""Gathering the dependency planner's inputs from the clouds.

The planner (:mod:`overcloud_migrate.planner`) makes no cloud calls; these
functions read what it needs: the source servers with their sizes and port
addresses, and the free capacity of the destination hosts from Placement.
Used by ``overcloud dependency show`` and ``overcloud migrate --order
dependency``.
"""

import dataclasses

from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import inputs
from overcloud_migrate.planner import model


def _flavor_sizes(conn, server, cache):
    flavor = server.flavor
    vcpus = getattr(flavor, 'vcpus', None)
    if vcpus is None:
        flavor_id = getattr(flavor, 'id', None) or server.flavor_id
        if flavor_id not in cache:
            cache[flavor_id] = conn.compute.get_flavor(flavor_id)
        flavor = cache[flavor_id]
    disk = (getattr(flavor, 'disk', 0) or 0) + (
        getattr(flavor, 'ephemeral', 0) or 0)
    return int(flavor.vcpus or 0), int(flavor.ram or 0), int(disk)


def source_inventory(conn, wanted=(), topology_needed=False):
    """Servers of the source project with their fixed IPs and sizes.

    :param wanted: server names or IDs; empty means every server of the
        project. Others' addresses go to ``outside`` so their flows are
        not reported as unknown.
    """
    every = list(conn.compute.servers(details=True))
    if wanted:
        chosen = []
        for ref in wanted:
            found = conn.compute.find_server(ref, ignore_missing=True)
            if found is None:
                raise model.PlannerError(
                    f'No server with name or ID {ref!r} in the source '
                    f'cloud.')
            if found.id not in chosen:
                chosen.append(found.id)
    else:
        chosen = [s.id for s in every]
    chosen_set = set(chosen)
    ports = {}
    project_id = conn.current_project_id
    for port in conn.network.ports(project_id=project_id):
        ports.setdefault(port.device_id, []).append(port)
    inventory = inputs.Inventory(servers=[])
    flavors = {}
    by_id = {s.id: s for s in every}
    for sid in chosen:
        server = by_id.get(sid) or conn.compute.get_server(sid)
        own = ports.get(sid)
        if own is None:
            own = list(conn.network.ports(device_id=sid))
        ips = tuple(ip['ip_address'] for p in own
                    for ip in (p.fixed_ips or []))
        vcpus, ram, disk = _flavor_sizes(conn, server, flavors)
        inventory.servers.append(model.ServerInfo(
            sid, server.name, ips, vcpus, ram, disk))
        inventory.networks[sid] = sorted({p.network_id for p in own})
        inventory.security_groups[sid] = sorted(
            {g for p in own for g in (p.security_group_ids or [])})
    for server in every:
        if server.id not in chosen_set:
            inventory.outside.update({server.id, server.name})
            for port in ports.get(server.id, []):
                inventory.outside.update(
                    ip['ip_address'] for ip in (port.fixed_ips or []))
    if topology_needed:
        external = set()
        for net_id in {n for nets in inventory.networks.values()
                       for n in nets}:
            net = conn.network.get_network(net_id)
            if net.is_router_external or net.is_shared:
                external.add(net_id)
        inventory.networks = {
            sid: [n for n in nets if n not in external]
            for sid, nets in inventory.networks.items()}
        for rule in conn.network.security_group_rules(
                project_id=project_id, direction='ingress'):
            if rule.remote_group_id:
                inventory.remote_groups.setdefault(
                    rule.security_group_id, []).append(rule.remote_group_id)
    return inventory


@dataclasses.dataclass(frozen=True)
class ComputeHost:
    """A Nova compute host of the destination, as ``--pin-hosts`` needs it.

    ``name`` is the compute service's host (what ``openstack server create
    --host`` and ``OS-EXT-SRV-ATTR:host`` use); ``nodes`` are its
    hypervisor host names, which are also its Placement resource provider
    names.
    """

    name: str
    state: str = 'up'          # 'up' or 'down'
    status: str = 'enabled'    # 'enabled' or 'disabled'
    nodes: tuple = ()


def compute_hosts(conn):
    """``{host: ComputeHost}`` of the destination's nova-compute services
    (admin)."""
    nodes = {}
    for hypervisor in conn.compute.hypervisors(details=True):
        service = hypervisor.service_details or {}
        host = service.get('host')
        if host:
            nodes.setdefault(host, []).append(hypervisor.name)
    found = {}
    for service in conn.compute.services():
        if service.binary != 'nova-compute':
            continue
        found[service.host] = ComputeHost(
            service.host, service.state or 'down',
            service.status or 'enabled',
            tuple(sorted(nodes.get(service.host, ()))))
    return found


def node_host_names(hosts):
    """``{node: host}`` for compute hosts with exactly one node.

    The planner's hosts come from Placement, named by node; a host that
    runs one node (libvirt, the usual case) is renamed to its compute
    host, the name a server is pinned to.  Nodes of multi-node hosts
    (ironic) keep their names.
    """
    return {h.nodes[0]: h.name for h in hosts.values() if len(h.nodes) == 1}


def placement_providers(conn):
    """Inventories and usages of the destination's compute nodes (admin),
    in the shape :func:`capacity.hosts_from_placement` reads."""
    providers = []
    for rp in conn.placement.resource_providers():
        inventories = {
            inv.resource_class: {'total': inv.total or 0,
                                 'reserved': inv.reserved or 0,
                                 'allocation_ratio':
                                     inv.allocation_ratio or 1.0}
            for inv in conn.placement.resource_provider_inventories(rp)}
        if 'VCPU' not in inventories:
            continue
        usages = conn.placement.fetch_resource_provider_usages(rp).usages
        providers.append({'name': rp.name, 'inventories': inventories,
                          'usages': usages or {}})
    return providers


def placement_hosts(conn):
    """Free capacity of the destination's compute hosts (admin).

    Hosts are named as Nova compute hosts where one node maps to one host
    (see :func:`node_host_names`), so a planned host can be pinned.
    """
    hosts = capacity.hosts_from_placement(placement_providers(conn))
    return capacity.rename_hosts(hosts, node_host_names(compute_hosts(conn)))
