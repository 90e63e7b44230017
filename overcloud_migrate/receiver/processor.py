"""What the Receiver does with one complete handoff item.

1. Read and check it (:func:`overcloud_migrate.handoff.read_item`:
   marker, sizes, the plan's sha512 and the plan model's own validation).
2. Claim it: ``status.json`` says ``processing`` (a restarted Receiver
   resumes such items).
3. Run the destination pipeline (:mod:`overcloud_migrate.workflow.pipeline`,
   the one ``migrate`` runs): a server already at the destination is done;
   prechecks (any problem fails the item before anything is created); the
   network world (one item at a time: two items of one migration share
   networks); then upload the image from the item's file, each volume
   from its file (a destination image, then the volume), boot, verify
   (the workflow's TaskFlow flow, persisted in the Receiver's journal, so a
   restart runs only the unfinished task and every task finds its earlier
   effect).
4. Write ``status.json`` (done or failed, with the reason) and move the
   item to ``done/`` or ``failed/``.
"""

import dataclasses
import logging
import threading
import uuid

from overcloud_migrate import clouds
from overcloud_migrate import exceptions
from overcloud_migrate import handoff
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.workflow import engine
from overcloud_migrate.workflow import pipeline
from overcloud_migrate.workflow import runner

LOG = logging.getLogger(__name__)
#: item name -> the Receiver's migration id for it (stable across restarts)
_NAMESPACE = uuid.UUID('5f0c7c8e-2d55-4b8c-9a51-0d3f2b6c6e11')


def receiver_migration_id(item_name):
    return str(uuid.uuid5(_NAMESPACE, item_name))


@dataclasses.dataclass
class Options:
    timeout: int = 600
    floating_ip_mode: str = 'keep'


class ItemFailed(exceptions.OvercloudMigrateError):
    """The item cannot be done; the message is the reason in status.json."""


class Processor:
    """Processes items of ``root`` into the destination cloud.

    ``connect()`` returns a new authenticated openstacksdk connection to
    the destination; ``dest_identity`` is its
    :class:`~overcloud_migrate.clouds.CloudIdentity`.
    """

    def __init__(self, root, connect, dest_identity, journal, options=None):
        self.root = root
        self.connect = connect
        self.dest_identity = dest_identity
        self.journal = journal
        self.options = options or Options()
        # Networks are shared between items: build them one item at a time.
        self.network_lock = threading.Lock()
        engine.prepare(journal.url)

    def process(self, name):
        """Process item ``name``; returns 'done', 'failed', or None when
        it is not (yet) an item to act on."""
        try:
            item = handoff.read_item(self.root, name)
        except handoff.NotReady:
            return None
        except handoff.ItemError as exc:
            return self._finish(name, None, 'failed', str(exc))
        except OSError as exc:
            LOG.warning('%s cannot be read: %s', name, exc)
            return None
        LOG.info('%s: server %s (%s), %d bytes, %d volume%s', name,
                 item.server.name, item.server.id, item.total_bytes,
                 len(item.volumes), '' if len(item.volumes) == 1 else 's')
        handoff.write_status(self.root, name, self._status(
            item, 'processing'))
        try:
            dest_id = self._run(item)
        except ItemFailed as exc:
            return self._finish(name, item, 'failed', str(exc))
        except Exception as exc:  # an unexpected error fails this item only
            LOG.exception('%s: unexpected error', name)
            return self._finish(name, item, 'failed', 'unexpected error: %s'
                                % (str(exc).splitlines()[0] if str(exc)
                                   else type(exc).__name__))
        return self._finish(name, item, 'done', None, dest_server_id=dest_id)

    # -- steps ------------------------------------------------------------

    def _run(self, item):
        plan = item.plan
        source_key = clouds.CloudIdentity(
            plan.source.name, plan.source.auth_url, plan.source.project,
            plan.source.region).key()
        dest_key = self.dest_identity.key()
        migration_id = receiver_migration_id(item.name)
        journal = self.journal
        if journal.get(migration_id) is None:
            journal.start(source_key, dest_key, plan.to_dict(),
                          migration_id=migration_id,
                          source_cloud=plan.source.name or None,
                          dest_cloud=self.dest_identity.name,
                          options={'handoff_item': item.name,
                                   'source_migration': item.migration_id})
            journal.add_server(migration_id, item.server.id,
                               item.server.name, 0)
        else:
            journal.set_state(migration_id, journal_mod.RUNNING)
            journal.log(migration_id, 'resumed by the receiver')
        try:
            dest = self.connect()
        except clouds.CloudError as exc:
            raise ItemFailed(str(exc))
        try:
            result = pipeline.run(pipeline.Job(
                migration_id=migration_id, plan=plan, journal=journal,
                source_key=source_key, dest_key=dest_key, dest=dest,
                admin=runner.is_admin(dest), items={item.server.id: item},
                network_when_migrated=False, lock=self.network_lock,
                settings=pipeline.Settings(
                    timeout=self.options.timeout,
                    floating_ip_mode=self.options.floating_ip_mode,
                    progress=lambda m: LOG.info('%s: %s', item.name, m))))
        except pipeline.PrecheckFailed as exc:
            raise ItemFailed(exc.summary())
        except pipeline.MigrationFailed as exc:
            raise ItemFailed(exc.reason)
        finally:
            dest.close()
        if item.server.id in result.migrated:
            # An earlier item (or a direct migrate) moved it already.
            LOG.info('%s: server %s already runs at the destination as '
                     '%s; nothing to do', item.name, item.server.name,
                     result.migrated[item.server.id])
        [record] = [r for r in result.servers
                    if r.source_id == item.server.id]
        if result.failed:
            raise ItemFailed(record.error or record.state)
        return record.dest_id

    def _status(self, item, state, reason=None, **extra):
        status = {'state': state, 'reason': reason, 'item': None}
        if item is not None:
            status.update({
                'item': item.name, 'migration_id': item.migration_id,
                'receiver_migration_id': receiver_migration_id(item.name),
                'server_id': item.server.id,
                'server_name': item.server.name})
        status.update(extra)
        return status

    def _finish(self, name, item, state, reason, **extra):
        status = self._status(item, state, reason, **extra)
        status['item'] = name
        if item is None:
            try:
                marker = handoff.read_marker(self.root, name)
                status.update(server_id=marker['server_id'],
                              server_name=marker.get('server_name'),
                              migration_id=marker['migration_id'])
            except (handoff.ItemError, OSError, KeyError, TypeError):
                pass
        try:
            handoff.write_status(self.root, name, status)
            where = handoff.move(self.root, name, handoff.DONE
                                 if state == 'done' else handoff.FAILED)
        except (handoff.ItemError, OSError) as exc:
            LOG.error('%s: %s (%s), and it cannot be marked or moved: %s',
                      name, state, reason or 'no reason', exc)
            return state
        if state == 'done':
            LOG.info('%s: done, server %s; moved to %s/%s', name,
                     extra.get('dest_server_id'), handoff.DONE, where)
        else:
            LOG.error('%s: failed: %s; moved to %s/%s', name, reason,
                      handoff.FAILED, where)
        return state
