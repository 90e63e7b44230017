"""How a plan's resources compare with and turn into the destination's:
the attributes of a create, the identity of a rule or a key, the reason
of an SDK error in one line.  Plain functions used by replication and the
prechecks."""


class Named:
    """A stand-in with a name and an ID (the name when none)."""

    def __init__(self, name, id=None):
        self.name = name
        self.id = id or name


def subnet_attrs(subnet, dest_network_id):
    """The create attributes of ``subnet`` on destination network
    ``dest_network_id``."""
    attrs = {'network_id': dest_network_id, 'name': subnet.name,
             'description': subnet.description,
             'ip_version': subnet.ip_version, 'cidr': subnet.cidr,
             'gateway_ip': subnet.gateway_ip,
             'allocation_pools': subnet.allocation_pools,
             'dns_nameservers': subnet.dns_nameservers,
             'host_routes': subnet.host_routes,
             'is_dhcp_enabled': subnet.enable_dhcp}
    for key in ('ipv6_ra_mode', 'ipv6_address_mode'):
        if getattr(subnet, key):
            attrs[key] = getattr(subnet, key)
    return attrs


def same_key(a, b):
    """Public keys equal, ignoring the comment and whitespace."""
    def core(key):
        return ' '.join((key or '').split()[:2])
    return core(a) == core(b)


def rule_signature(rule):
    """What makes two security-group rules the same rule."""
    return (rule.direction, rule.ether_type,
            (rule.protocol or '').lower() or None, rule.port_range_min,
            rule.port_range_max, rule.remote_ip_prefix, rule.remote_group_id)


def describe_rule(rule, plan):
    """A plan rule in words, for a row or an error."""
    parts = [rule.direction, rule.ethertype, rule.protocol or 'any']
    if rule.port_range_min is not None:
        parts.append('%s-%s' % (rule.port_range_min, rule.port_range_max))
    if rule.remote_ip_prefix:
        parts.append('from %s' % rule.remote_ip_prefix)
    if rule.remote_group_id:
        group = plan.by_id('security_groups', rule.remote_group_id)
        parts.append('from group %s' % (group.name if group
                                        else rule.remote_group_id))
    return ' '.join(parts)


def reason(exc):
    """The first line of an SDK error, for a message."""
    details = getattr(exc, 'details', None)
    return details or str(exc).splitlines()[0]
