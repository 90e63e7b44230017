"""``openstack overcloud migration list|show|resume|abort|rollback|sync|
cutover``."""

import json

from osc_lib.cli import format_columns
from osc_lib.command import command
from osc_lib import exceptions

from overcloud_migrate import clouds
from overcloud_migrate import exceptions as om_exceptions
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.cli import options
from overcloud_migrate.cli import progress
from overcloud_migrate.cli import report
from overcloud_migrate.plan import model
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.v1 import columns
from overcloud_migrate import timeline
from overcloud_migrate.v1 import constants
from overcloud_migrate.workflow import runner
from overcloud_migrate.workflow import warm


def _record(journal, migration_id):
    record = journal.get(migration_id)
    if record is None:
        raise exceptions.CommandError(
            "No migration '%s' in the journal %s." % (migration_id,
                                                      journal.url))
    return record


def _migration_parser(parser):
    parser.add_argument('migration', metavar='<migration>',
                        help='Migration ID (see `openstack overcloud '
                             'migration list`)')
    options.add_journal_option(parser)
    return parser


class ListMigration(command.Lister):
    """List the migrations recorded in the journal."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        options.add_journal_option(parser)
        return parser

    def take_action(self, parsed_args):
        journal = journal_mod.Journal(parsed_args.journal_url)
        rows = []
        for record in journal.migrations():
            rows.append((record.id, record.created_at.isoformat()
                         if record.created_at else '', record.state,
                         len(journal.servers(record.id)),
                         record.source_cloud or record.source,
                         record.dest_cloud or record.destination))
        return constants.MIGRATION_COLUMNS, rows


class ShowMigration(command.ShowOne):
    """Show a migration: its state, servers, phases and events."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = _migration_parser(super().get_parser(prog_name))
        parser.add_argument(
            '--timeline', metavar='<file>',
            help='Also draw the timeline (one bar per server, one colour '
                 'per phase, waves and downtime windows) to this .svg or '
                 '.png file (needs matplotlib: the plugin\'s "timeline" '
                 'extra)')
        return parser

    def take_action(self, parsed_args):
        journal = journal_mod.Journal(parsed_args.journal_url)
        record = _record(journal, parsed_args.migration)
        try:
            plan = runner.load_plan(record)
        except (ValueError, TypeError, model.PlanError):
            plan = None  # an unreadable plan only loses the host column
        if parsed_args.timeline:
            try:
                timeline.write(journal, record.id, parsed_args.timeline,
                               order=plan.order if plan else None)
            except timeline.TimelineError as exc:
                raise exceptions.CommandError(str(exc))
            progress.say('Timeline of migration %s written to %s'
                 % (record.id, parsed_args.timeline))
        servers = [columns.server_dict(runner.server_record(r, plan))
                   for r in journal.servers(record.id)]
        events = ['%s %s %s' % (e.at.isoformat() if e.at else '', e.level,
                                e.message) for e in journal.events(record.id)]
        created = [{'type': m.resource_type, 'source': m.source_id,
                    'destination': m.dest_id}
                   for m in journal.mappings(record.id) if m.created]
        synced = []
        for run in journal.servers(record.id):
            figures = warm.summary(journal, record.id, run.source_id)
            if figures:
                synced.append(dict(name=run.name, state=run.state,
                                   **figures))
        fields = ('id', 'state', 'created_at', 'updated_at', 'source_cloud',
                  'dest_cloud', 'options', 'error', 'servers', 'sync',
                  'created_resources', 'events')
        values = (record.id, record.state,
                  record.created_at.isoformat() if record.created_at else '',
                  record.updated_at.isoformat() if record.updated_at else '',
                  record.source_cloud or record.source,
                  record.dest_cloud or record.destination,
                  format_columns.DictColumn(json.loads(record.options or
                                                       '{}')),
                  record.error or '', columns.RecordListColumn(servers),
                  columns.RecordListColumn(synced),
                  columns.RecordListColumn(created),
                  format_columns.ListColumn(events))
        return fields, values


def _recorded(name):
    """A cloud name the journal holds, or None (no clouds.yaml entry)."""
    return None if name in (None, '', 'source') else name


class _CloudsCommand(command.Command):
    """Shared: reopen both clouds of a recorded migration.

    No cloud needs naming: the source is the clouds.yaml entry the journal
    recorded (``--os-cloud`` overrides it), the destination likewise
    (``--dest-cloud``); which ones are used is said on stderr.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = _migration_parser(super().get_parser(prog_name))
        options.add_dest_cloud_options(parser)
        return parser

    def _open(self, args):
        journal = journal_mod.Journal(args.journal_url)
        record = _record(journal, args.migration)
        given = self.app.options.cloud
        source_name = given or _recorded(record.source_cloud)
        progress.say("Source: cloud '%s' (%s)" % (
            source_name or 'from the OS_* variables',
            '--os-cloud' if given else 'recorded in the journal'))
        source = clouds.open_source(self.app.cloud_config, source_name,
                                    self.app.options)
        source_id = clouds.identity_of(source, source_name)
        if source_id.key() != record.source:
            raise exceptions.CommandError(
                'Migration %s was made from %s, not from the cloud of these '
                '--os-* options (%s): give the same source cloud.'
                % (record.id, record.source_cloud or record.source,
                   source_id.key()))
        saved = json.loads(record.options or '{}')
        if saved.get('handoff'):
            # migrate --handoff: no destination session, only the source.
            return (journal, record, source, source_id, None,
                    clouds.handoff_identity(saved.get('transport'),
                                            saved['handoff']))
        name = args.dest_cloud or record.dest_cloud
        progress.say("Destination: cloud '%s' (%s)" % (
            name, '--dest-cloud' if args.dest_cloud
            else 'recorded in the journal'))
        dest = clouds.open_destination(
            self.app.cloud_config, name,
            args.dest_region or record.dest_region,
            args.dest_project or record.dest_project)
        dest_id = clouds.identity_of(dest, name)
        if dest_id.key() != record.destination:
            raise exceptions.CommandError(
                'Migration %s went to %s, not to %s.'
                % (record.id, record.destination, dest_id.key()))
        return journal, record, source, source_id, dest, dest_id


class _RecordedRun(report.ReportThenFail, command.Lister, _CloudsCommand):
    """Shared: run a recorded migration further (resume, sync, cutover)
    with the options its journal holds; the report as `migrate` prints
    it, a non-zero exit when a server failed."""

    def get_parser(self, prog_name):
        return _CloudsCommand.get_parser(self, prog_name)

    def step(self, run, record, parsed_args):
        raise NotImplementedError

    def take_action(self, parsed_args):
        try:
            journal, record, source, source_id, dest, dest_id = \
                self._open(parsed_args)
            saved = json.loads(record.options or '{}')
            run_options = runner.Options(**{
                k: v for k, v in saved.items()
                if k in runner.Options.__dataclass_fields__})
            run = runner.Run(runner.load_plan(record), source, dest,
                             source_id, dest_id, journal, run_options,
                             progress=progress.say,
                             progress_bar=progress.bar_factory())
            outcome = self.step(run, record, parsed_args)
        except om_exceptions.OvercloudMigrateError as exc:
            raise exceptions.CommandError(str(exc))
        self.outcome = outcome
        return (constants.MIGRATE_COLUMNS,
                columns.migrate_rows(outcome.records))


class ResumeMigration(_RecordedRun):
    """Finish an interrupted migration without redoing finished steps.

    Every step finds its earlier effect (network resources by tag, the
    snapshot and the destination image by their properties, the server by
    its tag), so nothing is created twice.
    """

    def step(self, run, record, parsed_args):
        if record.state in journal_mod.FINISHED:
            raise exceptions.CommandError(
                'Migration %s is %s: nothing to resume.'
                % (record.id, record.state))
        return run.resume(record.id)


class _WarmStep(_RecordedRun):
    """Shared: a step of a warm migration, on some or all of its servers."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--server', metavar='<server>', action='append', default=[],
            dest='servers',
            help='Only this server of the migration (name or ID; repeat for '
                 'more; default: every server not cut over yet)')
        return parser


class SyncMigration(_WarmStep):
    """Run another sync round of a warm migration.

    The source servers keep running; only the blocks of their volumes that
    changed since the last round cross (and any the destination finds
    damaged). A server deleted, resized or rebuilt since the first round
    stops the migration with a sentence naming the change.
    """

    def step(self, run, record, parsed_args):
        return run.sync(record.id, parsed_args.servers)


class CutoverMigration(_WarmStep):
    """Cut a synced warm migration over to the destination.

    Each server is stopped, the blocks changed since its last sync round
    cross, and it boots at the destination from its volumes on its fixed
    IPs and MAC addresses, and is verified. A failed cut-over deletes what
    it booted and restarts the source server; its volumes stay in step for
    another try. Refused for a server that never finished a sync round.
    """

    def step(self, run, record, parsed_args):
        return run.cutover(record.id, parsed_args.servers)


class AbortMigration(command.Command):
    """Ask a running migration to stop before its next step.

    Each server's flow then reverts (its destination server and image are
    deleted, the source server restarted); use `migration rollback` to also
    remove the network world it built.
    """

    auth_required = False

    def get_parser(self, prog_name):
        return _migration_parser(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        journal = journal_mod.Journal(parsed_args.journal_url)
        record = _record(journal, parsed_args.migration)
        if record.state not in journal_mod.ABORTABLE:
            raise exceptions.CommandError('Migration %s is %s, not running.'
                                          % (record.id, record.state))
        journal.set_state(record.id, journal_mod.ABORTING)
        journal.log(record.id, 'abort requested')
        progress.say(
            "Abort of migration %s requested: its running process reverts "
            "each unfinished server (source cloud '%s', destination cloud "
            "'%s'), its snapshot included" % (
                record.id, record.source_cloud or record.source,
                record.dest_cloud or record.destination))


class RollbackMigration(command.Lister, _CloudsCommand):
    """Undo a migration: delete what it created, restart its sources.

    Deletes the destination servers and images it made, the network
    resources it created (never ones it only reused or mapped), and starts
    again every source server that was running before it. Safe to repeat.
    """

    def get_parser(self, prog_name):
        return _CloudsCommand.get_parser(self, prog_name)

    def take_action(self, parsed_args):
        try:
            journal, record, source, _sid, dest, _did = \
                self._open(parsed_args)
            saved = json.loads(record.options or '{}')
            transport = None
            if saved.get('transport') and not saved.get('handoff'):
                transport = transport_base.load(
                    saved['transport'], **saved.get('transport_options', {}))
                if not transport.reaches_volumes():
                    transport = None     # it kept nothing to drop
            deleted = runner.rollback(record, source, dest, journal,
                                      progress=progress.say,
                                      transport=transport)
        except om_exceptions.OvercloudMigrateError as exc:
            raise exceptions.CommandError(str(exc))
        rows = [(r.name, r.source_id, r.state) for r in
                journal.servers(record.id)]
        progress.say('Rolled back migration %s: %d resources deleted'
                     % (record.id, deleted))
        return ('Name', 'Source ID', 'State'), rows
