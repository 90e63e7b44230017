"""Plain data for the dependency planner.

Everything here is built from files or from data a command gathered from a
cloud; nothing in :mod:`overcloud_migrate.planner` talks to a cloud.

Traffic between servers is a mapping ``{(id_a, id_b): amount}`` with
``id_a < id_b`` (see :func:`pair`), in the unit of its source (bytes or a
rate); both directions of a conversation are added together.
"""

import dataclasses
import math

from overcloud_migrate import exceptions

Traffic = dict[tuple[str, str], float]

# Where the traffic figures of a plan come from.
BASIS_FLOWS = 'flows'
BASIS_PCAP = 'pcap'
BASIS_ESTIMATE = 'topology estimate'
BASIS_NONE = 'no traffic'


class PlannerError(exceptions.OvercloudMigrateError, ValueError):
    """Bad planner input; the message is a whole sentence for the user."""


class CapacityError(PlannerError):
    """The destination hosts cannot hold the servers."""


def pair(a, b):
    """Return the traffic key of two servers (order does not matter)."""
    return (a, b) if a <= b else (b, a)


@dataclasses.dataclass(frozen=True)
class Flow:
    """One row of traffic before its endpoints are mapped to servers.

    ``source`` and ``destination`` are IP addresses, server names or IDs.
    ``line`` is where the row came from (file line or packet number).
    """

    source: str
    destination: str
    amount: float
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    id: str
    name: str
    ips: tuple[str, ...] = ()
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0

    @property
    def demand(self):
        return (self.vcpus, self.ram_mb, self.disk_gb)


@dataclasses.dataclass(frozen=True)
class Host:
    """Free capacity of one destination host; ``None`` means unlimited."""

    name: str
    vcpus: int | None
    ram_mb: int | None
    disk_gb: int | None

    @property
    def capacity(self):
        return tuple(math.inf if v is None else v
                     for v in (self.vcpus, self.ram_mb, self.disk_gb))


@dataclasses.dataclass
class Group:
    """Servers that move together to one destination host."""

    server_ids: list[str]
    host: str | None
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    traffic_inside: float = 0.0
    traffic_cut: float = 0.0

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Wave:
    """Groups migrated at the same time; waves run one after the other."""

    index: int
    groups: list[Group]

    @property
    def server_ids(self):
        return [s for g in self.groups for s in g.server_ids]

    def to_dict(self):
        return {'index': self.index,
                'groups': [g.to_dict() for g in self.groups]}


@dataclasses.dataclass
class Plan:
    """The planner's answer: ordered waves of groups placed on hosts.

    ``traffic_cut`` is the traffic between servers placed on different
    destination hosts (it crosses the physical network);
    ``traffic_inside`` stays inside a host.
    """

    algorithm: str
    basis: str
    waves: list[Wave]
    traffic_total: float = 0.0
    traffic_inside: float = 0.0
    traffic_cut: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def estimate(self):
        return self.basis in (BASIS_ESTIMATE, BASIS_NONE)

    @property
    def groups(self):
        return [g for w in self.waves for g in w.groups]

    def server_order(self):
        """Server IDs wave by wave: ``[[id, ...], [id, ...], ...]``."""
        return [w.server_ids for w in self.waves]

    def host_of(self):
        """``{server_id: host_name}`` for every planned server."""
        return {s: g.host for g in self.groups for s in g.server_ids}

    def to_dict(self):
        return {
            'algorithm': self.algorithm,
            'basis': self.basis,
            'estimate': self.estimate,
            'traffic_total': self.traffic_total,
            'traffic_inside': self.traffic_inside,
            'traffic_cut': self.traffic_cut,
            'notes': list(self.notes),
            'waves': [w.to_dict() for w in self.waves],
        }
