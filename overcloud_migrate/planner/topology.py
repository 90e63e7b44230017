"""Estimated traffic when no flows or captures are given.

Two servers are tied when a security group of one admits traffic from a
security group of the other (a rule with ``remote_group_id``) or when they
share a tenant network. These ties say that servers *may* talk, not how
much: plans built on them are marked as an estimate.

Weights: a remote-group tie counts :data:`SECURITY_GROUP_WEIGHT`, a shared
network :data:`NETWORK_WEIGHT`; each is divided by ``k - 1`` for a set of
``k`` servers that are all tied to each other (a project's ``default``
group admits itself, a flat network holds everyone), so that one large
set does not drown the specific ties.
"""

import itertools

from overcloud_migrate.planner import model

SECURITY_GROUP_WEIGHT = 4.0
NETWORK_WEIGHT = 1.0
# Sets larger than this tie nobody: a network with 500 servers says little.
MAX_CLIQUE = 200


def _add_clique(traffic, members, weight):
    members = sorted(set(members))
    if len(members) < 2 or len(members) > MAX_CLIQUE:
        return
    share = weight / (len(members) - 1)
    for a, b in itertools.combinations(members, 2):
        key = model.pair(a, b)
        traffic[key] = traffic.get(key, 0.0) + share


def estimate_traffic(server_ids, networks, security_groups, remote_groups):
    """Return estimated :data:`~model.Traffic` among ``server_ids``.

    :param networks: ``{server_id: [network_id, ...]}`` (tenant networks
        only; the command leaves out external and provider networks)
    :param security_groups: ``{server_id: [security_group_id, ...]}``
    :param remote_groups: ``{security_group_id: [remote_group_id, ...]}``
        from the ingress rules of each group
    """
    wanted = set(server_ids)
    traffic = {}
    members = {}
    for sid, groups in security_groups.items():
        if sid in wanted:
            for group in groups:
                members.setdefault(group, set()).add(sid)
    for group, remotes in remote_groups.items():
        for remote in set(remotes):
            inside = members.get(group, set())
            peers = members.get(remote, set())
            if group == remote:
                _add_clique(traffic, inside, SECURITY_GROUP_WEIGHT)
                continue
            if not inside or not peers:
                continue
            if len(inside) * len(peers) > MAX_CLIQUE * MAX_CLIQUE:
                continue
            share = SECURITY_GROUP_WEIGHT / max(len(inside), len(peers))
            for a in inside:
                for b in peers:
                    if a != b:
                        key = model.pair(a, b)
                        traffic[key] = traffic.get(key, 0.0) + share
    on_network = {}
    for sid, nets in networks.items():
        if sid in wanted:
            for net in nets:
                on_network.setdefault(net, set()).add(sid)
    for servers in on_network.values():
        _add_clique(traffic, servers, NETWORK_WEIGHT)
    return traffic
