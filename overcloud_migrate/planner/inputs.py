"""Planner inputs gathered by a command, and the one call that plans them.

``openstack overcloud dependency show`` and ``openstack overcloud migrate
--order dependency`` both: read the traffic (:func:`read_traffic`, before
any API call), gather an :class:`Inventory` from the source cloud and a
list of :class:`~model.Host` from the destination, then call
:func:`plan_for_inventory`.
"""

import dataclasses
import logging

from overcloud_migrate import planner
from overcloud_migrate.planner import model
from overcloud_migrate.planner import topology
from overcloud_migrate.planner import traffic as traffic_mod

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Inventory:
    """What the planner needs to know about the source cloud.

    :param servers: :class:`~model.ServerInfo` to plan
    :param outside: IPs, IDs and names of other servers of the project;
        flows to them are dropped without a warning
    :param networks: ``{server_id: [tenant network id, ...]}``
    :param security_groups: ``{server_id: [security group id, ...]}``
    :param remote_groups: ``{security group id: [remote group id, ...]}``
        from ingress rules (the last three feed the topology estimate)
    """

    servers: list
    outside: set = dataclasses.field(default_factory=set)
    networks: dict = dataclasses.field(default_factory=dict)
    security_groups: dict = dataclasses.field(default_factory=dict)
    remote_groups: dict = dataclasses.field(default_factory=dict)


def read_traffic(flows_path=None, pcap_path=None):
    """Read ``--flows`` or ``--pcap``; return ``(flows, basis)``."""
    if flows_path:
        flows, _unit = traffic_mod.read_flows(flows_path)
        return flows, model.BASIS_FLOWS
    if pcap_path:
        flows, _unit = traffic_mod.read_pcap(pcap_path)
        return flows, model.BASIS_PCAP
    return None, model.BASIS_ESTIMATE


def plan_for_inventory(inventory, hosts, flows, basis, algorithm='default',
                       strict=False, warn=None):
    """Resolve flows (or estimate them) and plan; returns (plan, traffic).

    ``warn`` receives one sentence per warning (unknown addresses, ...).
    """
    warn = warn or LOG.warning
    if flows is None:
        traffic = topology.estimate_traffic(
            [s.id for s in inventory.servers], inventory.networks,
            inventory.security_groups, inventory.remote_groups)
    else:
        resolution = traffic_mod.resolve(flows, inventory.servers,
                                         outside=inventory.outside,
                                         strict=strict)
        if resolution.unmatched:
            warn(traffic_mod.unmatched_message(resolution.unmatched)
                 + '; their flows are ignored (use --strict to refuse).')
        traffic = resolution.traffic
    plan = planner.plan_dependencies(inventory.servers, hosts, traffic,
                                     algorithm=algorithm, basis=basis)
    return plan, traffic
