"""The migration plan: THE data model of overcloud-migrate.

A plan holds the servers to move and the network world they need, as read
from the source cloud (:mod:`overcloud_migrate.plan.inventory`), checked
against the destination (:mod:`~overcloud_migrate.plan.prechecks`) and
rebuilt there (:mod:`~overcloud_migrate.plan.replicate`).  It is written and
read as YAML or JSON so an operator can review and edit it; reading it back
validates every field and names the first bad one by its path.
"""

import dataclasses
import json
import pathlib
import typing

import yaml

from overcloud_migrate import exceptions
from overcloud_migrate.plan import atomic

PLAN_VERSION = 1


# Nova's services.host column is a String(255).
HOST_NAME_MAX = 255


class PlanError(exceptions.OvercloudMigrateError, ValueError):
    """A plan that cannot be used; the message names the field."""


def valid_host_name(name):
    """True for a plausible Nova compute host name."""
    return (isinstance(name, str) and 0 < len(name) <= HOST_NAME_MAX
            and name == name.strip() and not any(c.isspace() for c in name))


def _field(default=None, factory=None):
    if factory is not None:
        return dataclasses.field(default_factory=factory)
    return dataclasses.field(default=default)


@dataclasses.dataclass
class Network:
    id: str
    name: str
    description: str = ''
    mtu: typing.Optional[int] = None
    shared: bool = False
    external: bool = False
    admin_state_up: bool = True
    port_security_enabled: bool = True
    # False for networks of another project (shared or provider networks):
    # those are mapped to an existing destination network, never created.
    owned: bool = True


@dataclasses.dataclass
class Subnet:
    id: str
    name: str
    network_id: str
    cidr: str
    ip_version: int = 4
    gateway_ip: typing.Optional[str] = None
    allocation_pools: list = _field(factory=list)   # [{start, end}]
    dns_nameservers: list = _field(factory=list)
    host_routes: list = _field(factory=list)        # [{destination, nexthop}]
    enable_dhcp: bool = True
    ipv6_ra_mode: typing.Optional[str] = None
    ipv6_address_mode: typing.Optional[str] = None
    description: str = ''


@dataclasses.dataclass
class RouterInterface:
    subnet_id: str
    ip_address: str
    port_id: typing.Optional[str] = None


@dataclasses.dataclass
class Router:
    id: str
    name: str
    description: str = ''
    admin_state_up: bool = True
    # the source external network's id, or None for no gateway
    external_network_id: typing.Optional[str] = None
    enable_snat: typing.Optional[bool] = None
    interfaces: typing.List[RouterInterface] = _field(factory=list)
    routes: list = _field(factory=list)             # [{destination, nexthop}]


@dataclasses.dataclass
class SecurityGroupRule:
    direction: str
    ethertype: str = 'IPv4'
    protocol: typing.Optional[str] = None
    port_range_min: typing.Optional[int] = None
    port_range_max: typing.Optional[int] = None
    remote_ip_prefix: typing.Optional[str] = None
    remote_group_id: typing.Optional[str] = None    # a source group id
    description: str = ''

    def signature(self, remote_group=None):
        """What makes two rules the same (remote group already mapped)."""
        return (self.direction, self.ethertype,
                (self.protocol or '').lower() or None, self.port_range_min,
                self.port_range_max, self.remote_ip_prefix,
                remote_group if remote_group is not None
                else self.remote_group_id)


@dataclasses.dataclass
class SecurityGroup:
    id: str
    name: str
    description: str = ''
    stateful: bool = True
    rules: typing.List[SecurityGroupRule] = _field(factory=list)


@dataclasses.dataclass
class Keypair:
    name: str
    public_key: str
    type: str = 'ssh'


@dataclasses.dataclass
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    is_public: bool = True
    extra_specs: dict = _field(factory=dict)


@dataclasses.dataclass
class Image:
    id: str
    name: str
    disk_format: typing.Optional[str] = None
    container_format: typing.Optional[str] = None
    size: typing.Optional[int] = None
    hash_algo: typing.Optional[str] = None
    hash_value: typing.Optional[str] = None
    min_disk: int = 0
    min_ram: int = 0
    properties: dict = _field(factory=dict)


@dataclasses.dataclass
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclasses.dataclass
class Port:
    id: str
    network_id: str
    name: str = ''
    description: str = ''
    mac_address: typing.Optional[str] = None
    fixed_ips: typing.List[FixedIP] = _field(factory=list)
    allowed_address_pairs: list = _field(factory=list)  # [{ip_address, mac}]
    security_group_ids: list = _field(factory=list)
    port_security_enabled: bool = True


@dataclasses.dataclass
class FloatingIP:
    id: str
    floating_ip_address: str
    floating_network_id: str
    port_id: typing.Optional[str] = None
    fixed_ip_address: typing.Optional[str] = None
    description: str = ''


@dataclasses.dataclass
class Volume:
    """A Cinder volume attached to a server of the plan (boot or data)."""
    id: str
    size: int                           # GiB
    name: str = ''
    description: str = ''
    volume_type: typing.Optional[str] = None
    bootable: bool = False
    availability_zone: typing.Optional[str] = None
    metadata: dict = _field(factory=dict)
    # Cinder's volume_image_metadata (image properties a bootable volume
    # carries from the image it was made from)
    image_metadata: dict = _field(factory=dict)
    multiattach: bool = False
    encrypted: bool = False
    status: str = ''


@dataclasses.dataclass
class VolumeAttachment:
    """One volume of a server, in the order Nova lists them."""
    volume_id: str
    device: typing.Optional[str] = None
    # 0 for the volume the server boots from, None for a data volume
    boot_index: typing.Optional[int] = None
    delete_on_termination: bool = False


@dataclasses.dataclass
class Server:
    id: str
    name: str
    flavor_id: str
    boot_source: str = 'image'          # 'image' or 'volume'
    image_id: typing.Optional[str] = None
    key_name: typing.Optional[str] = None
    security_groups: list = _field(factory=list)    # source group ids
    metadata: dict = _field(factory=dict)
    availability_zone: typing.Optional[str] = None
    port_ids: list = _field(factory=list)
    # every attached volume, the boot volume (boot_index 0) among them
    volumes: typing.List[VolumeAttachment] = _field(factory=list)
    status: str = ''
    description: typing.Optional[str] = None
    tags: list = _field(factory=list)
    # The Nova compute host (``openstack compute service list``) to boot
    # the copy on, or None to let the destination's scheduler choose.
    # Set by --pin-hosts from the planner's placement, or by hand.
    dest_host: typing.Optional[str] = None


@dataclasses.dataclass
class Mappings:
    """Operator choices that change what is built at the destination."""
    networks: dict = _field(factory=dict)       # source net id|name -> dest
    external_network: typing.Optional[str] = None
    flavors: dict = _field(factory=dict)        # source flavor name -> dest
    availability_zones: dict = _field(factory=dict)
    volume_types: dict = _field(factory=dict)   # source type -> dest type


@dataclasses.dataclass
class CloudRef:
    name: str = ''
    auth_url: str = ''
    project: str = ''
    region: str = ''


@dataclasses.dataclass
class Plan:
    version: int = PLAN_VERSION
    source: CloudRef = _field(factory=CloudRef)
    mappings: Mappings = _field(factory=Mappings)
    networks: typing.List[Network] = _field(factory=list)
    subnets: typing.List[Subnet] = _field(factory=list)
    routers: typing.List[Router] = _field(factory=list)
    security_groups: typing.List[SecurityGroup] = _field(factory=list)
    keypairs: typing.List[Keypair] = _field(factory=list)
    flavors: typing.List[Flavor] = _field(factory=list)
    images: typing.List[Image] = _field(factory=list)
    ports: typing.List[Port] = _field(factory=list)
    floating_ips: typing.List[FloatingIP] = _field(factory=list)
    volumes: typing.List[Volume] = _field(factory=list)
    servers: typing.List[Server] = _field(factory=list)
    # --order dependency: the planner's waves ({index, groups: [{server_ids,
    # host, ...}]}); servers are migrated in this order, an operator may
    # edit it in the plan file.
    order: dict = _field(factory=dict)

    # -- lookups --------------------------------------------------------

    def by_id(self, kind, resource_id):
        for item in getattr(self, kind):
            if getattr(item, 'id', getattr(item, 'name', None)) == \
                    resource_id:
                return item
        return None

    def external_network_ids(self):
        """Source external networks referenced by routers and floating IPs."""
        ids = {r.external_network_id for r in self.routers
               if r.external_network_id}
        ids |= {f.floating_network_id for f in self.floating_ips}
        return sorted(ids)

    # -- (de)serialisation ----------------------------------------------

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise PlanError('plan: expected a mapping at the top level, got '
                            '%s' % type(data).__name__)
        version = data.get('version', PLAN_VERSION)
        if version != PLAN_VERSION:
            raise PlanError('plan.version: this tool reads version %d plans, '
                            'not %r' % (PLAN_VERSION, version))
        plan = _build(cls, data, 'plan')
        plan.check_references()
        if plan.order:
            plan.apply_order()
        return plan

    def waves(self):
        """Server IDs wave by wave from ``order`` (one wave if none)."""
        if not self.order.get('waves'):
            return [[s.id for s in self.servers]]
        return [[sid for group in wave.get('groups', [])
                 for sid in group.get('server_ids', [])]
                for wave in self.order['waves']]

    def apply_order(self):
        """Sort ``servers`` by ``order``; raise if they disagree."""
        ordered = [sid for wave in self.waves() for sid in wave]
        known = {s.id: s for s in self.servers}
        if sorted(ordered) != sorted(known):
            raise PlanError('plan.order: its waves must list every server of '
                            'the plan exactly once')
        self.servers = [known[sid] for sid in ordered]

    def check_references(self):
        """Every id a plan item refers to must be in the plan."""
        nets = {n.id for n in self.networks}
        mapped = set(self.mappings.networks)
        subnets = {s.id for s in self.subnets}
        ports = {p.id for p in self.ports}
        groups = {g.id for g in self.security_groups}
        flavors = {f.id for f in self.flavors}
        volumes = {v.id for v in self.volumes}
        for i, subnet in enumerate(self.subnets):
            if subnet.network_id not in nets:
                raise PlanError('plan.subnets[%d].network_id: network %s is '
                                'not in the plan' % (i, subnet.network_id))
        for i, port in enumerate(self.ports):
            if port.network_id not in nets and port.network_id not in mapped:
                raise PlanError('plan.ports[%d].network_id: network %s is '
                                'not in the plan' % (i, port.network_id))
            for j, fixed in enumerate(port.fixed_ips):
                if fixed.subnet_id not in subnets:
                    raise PlanError('plan.ports[%d].fixed_ips[%d].subnet_id: '
                                    'subnet %s is not in the plan'
                                    % (i, j, fixed.subnet_id))
        for i, group in enumerate(self.security_groups):
            for j, rule in enumerate(group.rules):
                if rule.remote_group_id and rule.remote_group_id not in groups:
                    raise PlanError(
                        'plan.security_groups[%d].rules[%d].remote_group_id: '
                        'group %s is not in the plan'
                        % (i, j, rule.remote_group_id))
        for i, server in enumerate(self.servers):
            for port_id in server.port_ids:
                if port_id not in ports:
                    raise PlanError('plan.servers[%d].port_ids: port %s is '
                                    'not in the plan' % (i, port_id))
            if server.flavor_id not in flavors:
                raise PlanError('plan.servers[%d].flavor_id: flavor %s is '
                                'not in the plan' % (i, server.flavor_id))
            if server.boot_source not in ('image', 'volume'):
                raise PlanError("plan.servers[%d].boot_source: 'image' or "
                                "'volume', not %r" % (i, server.boot_source))
            self._check_server_volumes(i, server, volumes)
            if server.dest_host is not None and \
                    not valid_host_name(server.dest_host):
                raise PlanError(
                    'plan.servers[%d].dest_host: expected a compute host '
                    'name (no spaces, at most %d characters) or null, got '
                    '%r' % (i, HOST_NAME_MAX, server.dest_host))

    @staticmethod
    def _check_server_volumes(i, server, volumes):
        boot = [a for a in server.volumes if a.boot_index == 0]
        for j, attachment in enumerate(server.volumes):
            path = 'plan.servers[%d].volumes[%d]' % (i, j)
            if attachment.volume_id not in volumes:
                raise PlanError('%s.volume_id: volume %s is not in the plan'
                                % (path, attachment.volume_id))
            if attachment.boot_index not in (None, 0):
                raise PlanError('%s.boot_index: 0 (the boot volume) or null '
                                '(a data volume), not %r'
                                % (path, attachment.boot_index))
        if len(boot) > 1:
            raise PlanError('plan.servers[%d].volumes: more than one volume '
                            'has boot_index 0' % i)
        if (server.boot_source == 'volume') != bool(boot):
            raise PlanError(
                'plan.servers[%d].volumes: a server with boot_source %r %s '
                'a volume with boot_index 0' % (
                    i, server.boot_source,
                    'needs' if server.boot_source == 'volume'
                    else 'cannot have'))

    def volumes_of(self, server):
        """The Volume records of ``server``, in attachment order."""
        return [self.by_id('volumes', a.volume_id) for a in server.volumes]

    def dest_hosts(self):
        """``{server_id: host}`` of the servers pinned to a host."""
        return {s.id: s.dest_host for s in self.servers if s.dest_host}

    def pin_hosts(self, host_of):
        """Pin each server to ``host_of[server_id]`` (None: unpin).

        ``host_of`` must name every server of the plan.
        """
        missing = [s.name for s in self.servers if s.id not in host_of]
        if missing:
            raise PlanError('plan.servers: no destination host is planned '
                            'for %s' % ', '.join(missing))
        for index, server in enumerate(self.servers):
            host = host_of[server.id]
            if host is not None and not valid_host_name(host):
                raise PlanError(
                    'plan.servers[%d].dest_host: %r is not a compute host '
                    'name' % (index, host))
            server.dest_host = host

    def dump(self, path):
        """Write to ``path``: JSON for *.json, YAML otherwise."""
        path = pathlib.Path(path)
        if path.suffix.lower() == '.json':
            text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        else:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False,
                                  default_flow_style=False)
        try:
            atomic.write_file(path, text.encode('utf-8'))
        except OSError as exc:
            raise PlanError('Cannot write the plan file %s: %s'
                            % (path, exc.strerror or exc))

    @classmethod
    def load(cls, path):
        path = pathlib.Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise PlanError('Cannot read the plan file %s: %s'
                            % (path, exc.strerror or exc))
        try:
            data = (json.loads(text) if path.suffix.lower() == '.json'
                    else yaml.safe_load(text))
        except (ValueError, yaml.YAMLError) as exc:
            raise PlanError('The plan file %s is not valid %s: %s' % (
                path, 'JSON' if path.suffix.lower() == '.json' else 'YAML',
                str(exc).splitlines()[0]))
        try:
            return cls.from_dict(data)
        except PlanError as exc:
            raise PlanError('The plan file %s is invalid: %s' % (path, exc))


# -- building dataclasses from plain data, with paths in errors -------------

_SCALARS = {str: 'a string', int: 'an integer', bool: 'true or false',
            dict: 'a mapping', list: 'a list'}


def _build(cls, data, path):
    if not isinstance(data, dict):
        raise PlanError('%s: expected a mapping, got %s'
                        % (path, type(data).__name__))
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PlanError('%s: unknown field(s) %s' % (path, ', '.join(unknown)))
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if (field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING):
                raise PlanError('%s.%s: required field missing'
                                % (path, field.name))
            continue
        values[field.name] = _convert(hints[field.name], data[field.name],
                                      '%s.%s' % (path, field.name))
    return cls(**values)


def _convert(hint, value, path):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _convert([a for a in args if a is not type(None)][0], value,
                        path)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            raise PlanError('%s: expected a list' % path)
        if args and dataclasses.is_dataclass(args[0]):
            return [_build(args[0], item, '%s[%d]' % (path, i))
                    for i, item in enumerate(value)]
        return list(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise PlanError('%s: expected true or false, got %r'
                            % (path, value))
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanError('%s: expected an integer, got %r' % (path, value))
        return value
    if hint in _SCALARS and not isinstance(value, hint):
        raise PlanError('%s: expected %s, got %r'
                        % (path, _SCALARS[hint], value))
    return value
