"""Small hand-checkable workloads for the planner tests."""

from overcloud_migrate.planner import model


def servers(count, vcpus=2, ram_mb=2048, disk_gb=20, prefix='vm'):
    return [model.ServerInfo(f'id{i}', f'{prefix}{i}', (f'10.0.0.{i + 1}',),
                             vcpus, ram_mb, disk_gb)
            for i in range(count)]


def hosts(count, vcpus=8, ram_mb=16384, disk_gb=200):
    return [model.Host(f'host{h}', vcpus, ram_mb, disk_gb)
            for h in range(count)]


def traffic(edges):
    """``{(i, j): amount}`` on indexes -> traffic keyed by server IDs."""
    return {model.pair(f'id{i}', f'id{j}'): float(w)
            for (i, j), w in edges.items()}


# Two 3-tier apps as chains web-app-db: vm0-vm1-vm2 and vm3-vm4-vm5, and
# one light call between them (vm2 -> vm3, 5). Known cut: 5.
TWO_APPS = {(0, 1): 100, (1, 2): 80, (3, 4): 60, (4, 5): 50, (2, 3): 5}
