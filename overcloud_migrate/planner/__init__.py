"""Dependency planner: pure functions on plain data, no cloud calls.

The entry point is :func:`plan_dependencies`; ``openstack overcloud
dependency show`` and ``openstack overcloud migrate --order dependency``
both call it with servers, hosts and traffic they gathered.
"""

from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import model
from overcloud_migrate.planner import order
from overcloud_migrate.planner import partition
from overcloud_migrate.planner import problem as problem_mod
from overcloud_migrate.planner import seed

ALGORITHMS = ('default', 'seed')


def plan_dependencies(servers, hosts, traffic, *, algorithm='default',
                      basis=model.BASIS_FLOWS):
    """Group, order and place ``servers`` on ``hosts``.

    :param servers: :class:`model.ServerInfo` to migrate
    :param hosts: :class:`model.Host` free capacities at the destination
    :param traffic: :data:`model.Traffic` keyed by server ID pairs, for
        example :func:`traffic.resolve` ``(...).traffic`` or
        :func:`topology.estimate_traffic`
    :param algorithm: ``'default'`` or ``'seed'``
    :param basis: where the traffic came from (``model.BASIS_*``); plans
        on estimated or absent traffic say so in ``notes``
    :returns: :class:`model.DependencyPlan`; ``plan.server_order()`` is the list of
        waves (server IDs) and ``plan.host_of()`` the planned hosts
    :raises model.PlannerError: bad input, including
        :class:`model.CapacityError` when the servers do not fit
    """
    if algorithm not in ALGORITHMS:
        raise model.PlannerError(
            f'Unknown algorithm {algorithm!r}; choose one of '
            f'{", ".join(ALGORITHMS)}.')
    servers = list(servers)
    hosts = list(hosts)
    if not hosts:
        raise model.CapacityError('No destination hosts are given.')
    capacity.check_demand(servers, hosts)
    problem = problem_mod.Problem(servers, hosts, traffic)
    notes = []
    if basis == model.BASIS_ESTIMATE:
        notes.append('No traffic data: groups are an ESTIMATE from '
                     'security-group rules and shared networks.')
    elif problem.total == 0 and servers:
        notes.append('No traffic between these servers: each server is '
                     'its own group.')
        basis = model.BASIS_NONE if basis != model.BASIS_PCAP else basis
    if algorithm == 'seed':
        assignment, units = seed.plan(problem)
    else:
        assignment, units, more = partition.plan(problem)
        notes.extend(more)
        units = order.order_units(problem, units)
    return problem.build_plan(algorithm, basis, assignment, units, notes)
