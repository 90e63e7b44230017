"""``--order dependency``: put the plan's servers in the planner's order.

Traffic between the servers (a flow file, a capture, or the topology
estimate) decides groups, waves and destination hosts
(:mod:`overcloud_migrate.planner`); the waves are written into the plan
(``order``) and the servers sorted by them, so the migration follows them
and an operator can edit them in the plan file.
"""

from overcloud_migrate.plan import cloud_inputs
from overcloud_migrate.plan import model
from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import inputs


def read_traffic(flows=None, pcap=None):
    """Read the traffic first: a bad file fails before any API call."""
    return inputs.read_traffic(flows, pcap)


def order_by_dependency(plan, source, dest, traffic, host_capacity=None,
                        algorithm='default', warn=None, pin_hosts=False):
    """Compute the waves for ``plan``'s servers and apply them.

    ``traffic`` is what :func:`read_traffic` returned.  With ``pin_hosts``
    each server is also pinned (``dest_host``) to the host the planner
    placed its group on.  Returns the planner's plan (for reporting).
    """
    flows, basis = traffic
    inventory = cloud_inputs.source_inventory(
        source, [s.id for s in plan.servers], topology_needed=flows is None)
    if host_capacity:
        hosts = capacity.load_host_capacity(host_capacity)
    else:
        hosts = cloud_inputs.placement_hosts(dest)
    result, _traffic = inputs.plan_for_inventory(
        inventory, hosts, flows, basis, algorithm=algorithm, warn=warn)
    plan.order = result.to_dict()
    plan.apply_order()
    if pin_hosts:
        plan.pin_hosts(result.host_of())
    return result


def hosts_from_order(order):
    """``{server_id: host}`` from a plan's ``order`` (the planner's groups).

    Used by ``--pin-hosts`` with a plan file whose order was planned
    earlier; a group without a host leaves its servers unpinned.
    """
    return {sid: group.host for wave in model.parse_order(order)
            for group in wave for sid in group.server_ids}


def describe_hosts(plan):
    """One line: which servers go to which destination host."""
    by_host = {}
    for server in plan.servers:
        by_host.setdefault(server.dest_host or '(scheduler)', []).append(
            server.name)
    return ' | '.join('%s -> %s' % (', '.join(names), host)
                      for host, names in by_host.items())
