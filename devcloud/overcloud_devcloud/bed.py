"""The bed as a whole: bring it up, report on it, take it down."""

import concurrent.futures
import datetime
import shutil
import sys
import time
import urllib.error
import urllib.request

import yaml

from overcloud_devcloud import bootstrap
from overcloud_devcloud import broker
from overcloud_devcloud import confgen
from overcloud_devcloud import credentials
from overcloud_devcloud import database
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import preload
from overcloud_devcloud import process
from overcloud_devcloud import services

START_TIMEOUT = 180


class BedError(Exception):
    """Something the operator must act on; the message says what."""


def _say(message):
    print(message, file=sys.stderr, flush=True)


class Bed:

    def __init__(self, layout=None, progress=_say, preloading=True):
        self.layout = layout or layout_mod.Layout()
        self.progress = progress
        # Start Nova's and Cinder's RPC services from preloaders (see
        # overcloud_devcloud.preload) rather than each on its own.
        self.preloading = preloading
        self._preloaders = {}

    # -- what runs ----------------------------------------------------------

    def infrastructure(self):
        return [services.mariadb_service(self.layout),
                services.rabbitmq_service(self.layout)]

    def cloud_services(self, cloud):
        return services.cloud_services(self.layout, cloud)

    def all_services(self):
        result = self.infrastructure()
        for cloud in layout_mod.CLOUDS:
            result.extend(self.cloud_services(cloud))
        return result

    def pid(self, service):
        return process.read_pid(self.layout.pidfile(service.slug))

    # -- health -------------------------------------------------------------

    def answers(self, service):
        """True when the service answers on its port."""
        if service.health == 'tcp':
            return process.port_in_use(service.port)
        if service.health == 'http':
            url = 'http://%s:%d/' % (layout_mod.HOST, service.port)
            try:
                with urllib.request.urlopen(url, timeout=3) as reply:
                    return reply.status < 500
            except urllib.error.HTTPError as exc:
                return exc.code < 500
            except (OSError, ValueError):
                return False
        return self.pid(service) is not None

    def _rpc_states(self, cloud):
        """{(api, binary, host): 'up'|'down'} of the RPC services of
        ``cloud`` (Nova's and Cinder's)."""
        states = {}
        try:
            secrets = credentials.load_or_create(self.layout)
            conn = bootstrap.connect(self.layout, secrets, cloud)
        except Exception:  # Keystone may be down: then nothing answers
            return states
        for api, listing in (('compute', conn.compute.services),
                             ('block-storage', conn.block_storage.services)):
            try:
                states.update({(api, svc.binary, svc.host): svc.state
                               for svc in listing()})
            except Exception:  # that API is down: its services don't answer
                pass
        return states

    def data_dir(self, service):
        """Where ``service`` keeps the bytes of what it stores, if anywhere:
        the volume share of cinder-volume (a DTN of the cloud reads and
        writes volume files there), the backup directory of cinder-backup,
        the image store of Glance, the instances of a nova-compute."""
        layout, cloud = self.layout, service.cloud
        if cloud is None:
            return None
        short = service.name.split('/', 1)[1]
        if short == 'cinder-volume':
            return layout.volume_share(cloud)
        if short == 'cinder-backup':
            return layout.backup_dir(cloud)
        if short == 'glance':
            return layout.cloud_dir(cloud) / 'glance' / 'images'
        if service.binary == 'nova-compute':
            return layout.instances_dir(cloud, service.host)
        return None

    def status(self):
        """One dict per service: name, port, pid, running, answers, rss,
        log and data (see :meth:`data_dir`)."""
        rows, states = [], {}
        for service in self.all_services():
            pid = self.pid(service)
            if service.health == 'process' and pid is not None:
                if service.cloud not in states:
                    states[service.cloud] = self._rpc_states(service.cloud)
                ok = states[service.cloud].get(
                    (service.api, service.binary, service.host)) == 'up'
            else:
                ok = pid is not None and self.answers(service)
            rows.append({
                'service': service.name,
                'port': service.port,
                'pid': pid,
                'running': pid is not None,
                'answers': ok,
                'rss_mib': round(process.tree_rss(pid) / 2**20, 1)
                if pid else 0.0,
                'log': str(self.layout.logfile(service.slug)),
                'data': str(self.data_dir(service) or ''),
            })
        return rows

    def is_up(self):
        return all(row['running'] and row['answers'] for row in self.status())

    # -- up -----------------------------------------------------------------

    def _preflight(self, pending):
        missing = services.missing_packages()
        if missing:
            raise BedError(
                'devcloud needs the Debian packages %s; install them with: '
                'apt-get install -y %s' % (', '.join(missing),
                                            ' '.join(missing)))
        taken = []
        for service in pending:
            if service.port and process.port_in_use(service.port):
                holder = process.port_holder(service.port)
                who = (' by %s (pid %d)' % (holder[1], holder[0])
                       if holder else '')
                taken.append('port %d (%s) is already in use%s'
                             % (service.port, service.name, who))
        if taken:
            raise BedError('Cannot start devcloud: %s. Stop that process or '
                           'choose other ports with %s.'
                           % ('; '.join(taken), layout_mod.BASE_PORT_ENV))

    def _start(self, service, started):
        preloader = self._preloaders.get(service.preload)
        if preloader is not None:
            try:
                preloader.spawn(service.name, service.binary, service.args,
                                self.layout.pidfile(service.slug),
                                self.layout.logfile(service.slug))
            except preload.PreloadError as exc:
                raise BedError(str(exc))
        else:
            process.start(service.name, service.argv,
                          self.layout.pidfile(service.slug),
                          self.layout.logfile(service.slug), env=service.env)
        started.append(service)

    def _start_preloaders(self, pending):
        """A preloader for each family of the services still to start: they
        import while MariaDB and RabbitMQ boot."""
        if not self.preloading:
            return
        for service in self.all_services():
            family = service.preload
            if service.name in pending and family and \
                    family not in self._preloaders:
                self._preloaders[family] = preload.Preloader(
                    family, self.layout.logfile('preload-%s' % family),
                    env=service.env)

    def _stop_preloaders(self):
        while self._preloaders:
            self._preloaders.popitem()[1].close()

    def _wait(self, service, timeout=START_TIMEOUT):
        """Wait until ``service`` answers; fail early if it dies."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive([service])
            if service.health == 'process' or self.answers(service):
                return
            if time.monotonic() > deadline:
                log = self.layout.logfile(service.slug)
                raise BedError('%s did not answer on port %s within %d s; '
                               'log %s ends with:\n%s'
                               % (service.name, service.port, timeout, log,
                                  process.tail(log)))
            time.sleep(0.25)

    def _check_alive(self, batch):
        for service in batch:
            if self.pid(service) is None:
                log = self.layout.logfile(service.slug)
                raise BedError('%s died while starting; log %s ends with:\n%s'
                               % (service.name, log, process.tail(log)))

    def _start_and_wait(self, batch, started):
        for service in batch:
            self._start(service, started)
        for service in batch:
            self._wait(service)

    def up(self):
        """Bring the bed up; returns 'running', 'warm' or 'cold'."""
        pending = {s.name for s in self.all_services()
                   if self.pid(s) is None}
        if not pending and self.is_up():
            return 'running'
        self._preflight([s for s in self.all_services() if s.name in pending])
        cold = not self.layout.ready_marker.exists()
        if cold and self.layout.home.exists():
            # A cold start that never finished: begin again from nothing.
            self._stop_all()
            self._purge()
            pending = {s.name for s in self.all_services()}
        started = []
        try:
            self._start_preloaders(pending)
            self._bring_up(pending, cold, started)
        except BaseException:
            self._stop_preloaders()
            for service in reversed(started):
                process.stop(self.layout.pidfile(service.slug))
            raise
        self._stop_preloaders()
        return 'cold' if cold else 'warm'

    def _bring_up(self, pending, cold, started):
        layout = self.layout
        for path in (layout.run_dir, layout.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        secrets = credentials.load_or_create(layout)
        infra = [s for s in self.infrastructure() if s.name in pending]
        if cold:
            layout.base_port_file.write_text('%d\n' % layout.ports.base)
            self.progress('devcloud: initialising MariaDB and RabbitMQ in %s'
                          % layout.home)
            database.initialise(layout)
        broker.write_config(layout, secrets)
        # Only MariaDB is waited for here (about a second): RabbitMQ takes
        # several seconds of CPU to boot, and every OpenStack service spends
        # longer importing its code before it opens an AMQP connection (it
        # retries until the broker answers), so the broker boots while the
        # clouds start; each cloud waits for it before its RPC checks.
        for service in infra:
            self._start(service, started)
        for service in infra:
            if service.name == 'mariadb':
                self._wait(service)
        if cold or not all(layout.cinder_marker(c).exists()
                           for c in layout_mod.CLOUDS):
            # Also when a bed made before devcloud had Cinder gains it.
            database.create_databases(layout, secrets)
        for cloud in layout_mod.CLOUDS:
            confgen.write_cloud(layout, secrets, cloud)
        with concurrent.futures.ThreadPoolExecutor(len(layout_mod.CLOUDS)) \
                as pool:
            jobs = [pool.submit(self._bring_up_cloud, cloud, pending, cold,
                                secrets, started)
                    for cloud in layout_mod.CLOUDS]
            errors = [job.exception() for job in jobs if job.exception()]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BedError('\n'.join(str(e) for e in errors))
        clouds = layout.clouds_yaml
        clouds.write_text(yaml.safe_dump(bootstrap.clouds_yaml(layout,
                                                               secrets)))
        clouds.chmod(0o600)
        if cold:
            layout.ready_marker.write_text(time.strftime('%F %T\n'))

    def _bring_up_cloud(self, cloud, pending, cold, secrets, started):
        layout = self.layout
        since = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None, microsecond=0)
        todo = [s for s in self.cloud_services(cloud) if s.name in pending]
        cinder_new = not layout.cinder_marker(cloud).exists()
        if cold:
            self.progress('devcloud: creating the databases of %s' % cloud)
            bootstrap.sync_databases(layout, secrets, cloud)
            keystone = [s for s in todo if s.name.endswith('/keystone')]
            self._start_and_wait(keystone, started)
            bootstrap.register_identity(layout, secrets, cloud)
            todo = [s for s in todo if s not in keystone]
        elif cinder_new:
            self.progress('devcloud: adding Cinder to %s' % cloud)
            bootstrap.sync_cinder_database(layout, cloud)
        self.progress('devcloud: starting %s' % cloud)
        self._start_and_wait(todo, started)
        # RPC needs the broker (started beside the clouds, see _bring_up).
        self._wait(services.rabbitmq_service(layout))
        conn = bootstrap.connect(layout, secrets, cloud)

        def still_running():
            self._check_alive(self.cloud_services(cloud))

        bootstrap.wait_for_compute(conn, cloud, still_running, since)
        if cinder_new:
            bootstrap.register_cinder(layout, secrets, cloud)
            # A new connection: this one's catalog predates Cinder's entries.
            conn = bootstrap.connect(layout, secrets, cloud)
        bootstrap.wait_for_block_storage(conn, cloud, still_running, since)
        # Map new compute hosts into cell1: every host on a cold start, and
        # on a warm one any host added since (a bed made by an older
        # devcloud with fewer computes).
        bootstrap.discover_new_hosts(layout, cloud)
        if cold:
            self.progress('devcloud: creating flavors, network and image in '
                          '%s' % cloud)
            bootstrap.create_resources(layout, secrets, cloud)
        if cinder_new:
            bootstrap.create_volume_types(layout, secrets, cloud)
            layout.cinder_marker(cloud).write_text(time.strftime('%F %T\n'))
        self.progress('devcloud: %s is up' % cloud)

    # -- down ---------------------------------------------------------------

    def _stop_all(self):
        """Stop the clouds (all at once), then the broker and database."""
        stopped = []
        layers = [[s for s in self.all_services() if s.cloud],
                  [s for s in self.all_services() if not s.cloud]]
        for layer in layers:
            pids = process.stop_many(
                [self.layout.pidfile(s.slug) for s in layer], timeout=15)
            stopped.extend(s.name for s, pid in zip(layer, pids)
                           if pid is not None)
        # RabbitMQ starts epmd as a daemon of its own; it holds our port.
        holder = process.port_holder(self.layout.ports.epmd)
        if holder and holder[1] == 'epmd':
            process.write_pidfile(self.layout.pidfile('epmd'), holder[0])
            process.stop(self.layout.pidfile('epmd'))
        return stopped

    # What devcloud writes into its home; nothing else there is touched.
    OWN_ENTRIES = ('run', 'log', 'secrets.json', 'clouds.yaml', 'initialised',
                   layout_mod.BASE_PORT_FILE, 'mariadb',
                   'rabbitmq') + layout_mod.CLOUDS

    def _purge(self):
        home = self.layout.home
        for name in self.OWN_ENTRIES:
            path = home / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        try:
            home.rmdir()
        except OSError:
            pass  # missing, or holds files that are not ours

    def down(self, purge=False):
        """Stop every process of the bed; returns the names stopped."""
        stopped = self._stop_all()
        if purge:
            self._purge()
        return stopped

    def environment(self):
        """Variables that point OpenStack clients at this bed, and the
        volume share, backup directory and Glance store of each cloud
        (``OVERCLOUD_DEVCLOUD_VOLUMES_A``, ``OVERCLOUD_DEVCLOUD_BACKUPS_A``,
        ``OVERCLOUD_DEVCLOUD_IMAGES_A``, ``..._B``): what a DTN of that
        cloud reaches as NFS."""
        env = {'OS_CLIENT_CONFIG_FILE': str(self.layout.clouds_yaml)}
        for cloud in layout_mod.CLOUDS:
            suffix = cloud.rsplit('-', 1)[1].upper()
            env['OVERCLOUD_DEVCLOUD_VOLUMES_%s' % suffix] = str(
                self.layout.volume_share(cloud))
            env['OVERCLOUD_DEVCLOUD_BACKUPS_%s' % suffix] = str(
                self.layout.backup_dir(cloud))
            env['OVERCLOUD_DEVCLOUD_IMAGES_%s' % suffix] = str(
                self.layout.image_store(cloud))
        return env
