"""Measure devcloud's start-up and memory against the issue's targets.

Brings up a throw-away bed (its own state directory and ports, so a running
bed is not disturbed): cold start, memory of every process, stop, warm start,
then purges it.  Prints each figure beside its target and the ratio
(figure / target; below 1.0 meets the target).

    .venv/bin/python benchmarks/devcloud_start.py [--base-port 27300]
"""

import argparse
import json
import sys
import tempfile
import time

from overcloud_devcloud import bed as bed_mod
from overcloud_devcloud import layout as layout_mod

RSS = 'RSS of both clouds + broker + database (GiB)'
CINDER_RSS = 'of which Cinder, both clouds (GiB)'
TARGETS = {'cold start (s)': 180.0, 'warm start (s)': 45.0, RSS: 4.5}


def _is_cinder(row):
    return row['service'].split('/')[-1].startswith('cinder-')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--base-port', type=int, default=27300)
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix='devcloud-bench-') as home:
        bed = bed_mod.Bed(layout_mod.Layout(home, args.base_port),
                          progress=lambda message: None)
        try:
            start = time.monotonic()
            assert bed.up() == 'cold'
            figures['cold start (s)'] = time.monotonic() - start
            time.sleep(10)  # let the services settle before reading memory
            rows = bed.status()
            figures[RSS] = sum(r['rss_mib'] for r in rows) / 1024
            figures[CINDER_RSS] = sum(r['rss_mib'] for r in rows
                                      if _is_cinder(r)) / 1024
            for row in rows:
                if _is_cinder(row):
                    figures['RSS %s (MiB)' % row['service']] = row['rss_mib']
            start = time.monotonic()
            bed.down()
            figures['stop (s)'] = time.monotonic() - start
            start = time.monotonic()
            assert bed.up() == 'warm'
            figures['warm start (s)'] = time.monotonic() - start
        finally:
            bed.down(purge=True)
    print('%-50s %10s %8s %7s' % ('figure', 'measured', 'target', 'ratio'))
    for name, value in figures.items():
        target = TARGETS.get(name)
        print('%-50s %10.2f %8s %7s' % (
            name, value, '%.1f' % target if target else '-',
            '%.2f' % (value / target) if target else '-'))
    json.dump({k: round(v, 2) for k, v in figures.items()}, sys.stderr)
    sys.stderr.write('\n')
    return 0 if all(figures[k] <= t for k, t in TARGETS.items()) else 1


if __name__ == '__main__':
    sys.exit(main())
