"""``--transport`` and the options of the drivers stevedore finds.

Each driver declares its options on its class
(:attr:`overcloud_migrate.transports.base.Transport.options`); this module
only collects them: ``openstack overcloud migrate`` adds them to its
parser, validates them and turns them into the chosen driver's keyword
arguments, and ``openstack overcloud transport list`` shows which belong
to which driver.  No driver is named here, so a third-party driver brings
its own options.  Each flag is ``--<driver>-<option>``, so two drivers
never collide.
"""

from osc_lib import exceptions

from overcloud_migrate.cli import options
from overcloud_migrate.transports import base

DEFAULT = 'glance'


def drivers():
    """{name: driver class} of the installed drivers (a broken one is left
    out: it must not break --help)."""
    try:
        return base.driver_classes()
    except Exception:  # a broken install must not break --help
        return {}


def declared(name=None):
    """``(driver name, Opt)`` of every driver (or of driver ``name``)."""
    return [(driver, opt) for driver, cls in drivers().items()
            if name in (None, driver)
            for opt in getattr(cls, 'options', ())]


def option_names(name):
    """The command-line options of driver ``name``, in --help order."""
    return [opt.option(name) for _driver, opt in declared(name)]


def transport_names():
    return sorted(drivers()) or [DEFAULT]


def _type(opt):
    if opt.type is int and opt.minimum is not None:
        return options.at_least(opt.minimum)
    return opt.type


def add_transport_options(parser):
    """--transport and every driver's options, one group per driver."""
    move = parser.add_argument_group('moving servers')
    move.add_argument(
        '--transport', metavar='<name>', default=DEFAULT,
        help='How images cross: %s (see `openstack overcloud transport '
             'list`; default: %s)' % (', '.join(transport_names()), DEFAULT))
    groups = {}
    for driver, opt in declared():
        group = groups.get(driver)
        if group is None:
            group = groups[driver] = parser.add_argument_group(
                '%s transport' % driver)
        if opt.switch:
            group.add_argument(opt.option(driver), dest=opt.dest(driver),
                               action='store_true', help=opt.help)
        else:
            group.add_argument(opt.option(driver), dest=opt.dest(driver),
                               metavar=opt.metavar, type=_type(opt),
                               help=opt.help)
    return move


def validate(args):
    """Refuse, before any API call, an unknown transport, options of
    another transport and missing required options of the chosen one."""
    found = drivers()
    if found and args.transport not in found:
        raise exceptions.CommandError(
            "Unknown transport '%s'; valid transports: %s."
            % (args.transport, ', '.join(sorted(found))))
    stray = [(driver, opt.option(driver)) for driver, opt in declared()
             if driver != args.transport
             and getattr(args, opt.dest(driver), None) not in (None, False)]
    if stray:
        flags = [flag for _driver, flag in stray]
        raise exceptions.CommandError(
            '%s %s only with --transport %s, not --transport %s.' % (
                ', '.join(flags), 'goes' if len(flags) == 1 else 'go',
                ' or '.join(sorted({d for d, _flag in stray})),
                args.transport))
    cls = found.get(args.transport)
    # With --handoff DIR, DIR fills the driver's handoff option.
    given = {getattr(cls, 'handoff_option', None)} \
        if getattr(args, 'handoff', None) else set()
    missing = [opt.option(args.transport)
               for _driver, opt in declared(args.transport)
               if opt.required and opt.name not in given
               and getattr(args, opt.dest(args.transport), None) is None]
    if missing:
        raise exceptions.CommandError('The %s transport needs %s.' % (
            args.transport, ', '.join(missing)))


def driver_options(args, timeout=None, handoff=None):
    """The keyword arguments of the chosen driver from ``args``; with
    ``handoff`` (``migrate --handoff DIR``) DIR fills its handoff option,
    and ``timeout`` its timeout option."""
    result = {}
    for _driver, opt in declared(args.transport):
        value = getattr(args, opt.dest(args.transport), None)
        if value is not None and value is not False:
            result[opt.name] = value
    cls = drivers().get(args.transport)
    if handoff and getattr(cls, 'handoff_option', None):
        result[cls.handoff_option] = handoff
    if timeout and getattr(cls, 'timeout_option', None):
        result[cls.timeout_option] = timeout
    return result
