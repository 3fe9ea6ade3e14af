"""The proxies' control socket: Kamailio's ``ctl`` module on a unix socket, so that
``ivr cluster status`` reads each proxy's view of the nodes and ``ivr reload --asterisk`` reloads
its dispatcher list (BINRPC, ivr/kamrpc.py).

A unix socket, never TCP: whoever reaches the socket may call every RPC of the proxy (mark nodes
down, reload, stop it), so it is a file only the proxy's user may open (``mode`` 0600; root and
that user, e.g. ``sudo -u kamailio ivr cluster status`` or root), or, with the cluster's
``control_group``, that group too (0660): a group the engines run in (deploy/: ``ivr-kamctl``), so
that the console's 集群 page and ``ivr reload --asterisk`` run as the engine's user reach it, and
nobody else. Kamailio gives the socket a group only when it runs in it (as root it may give any):
deploy/kamailio-ivr@.service runs the proxy with that group. One socket per proxy, named after it, in ``run_dir``
(``/run/kamailio``).
"""

from __future__ import annotations

from ivr.asterisk_conf import kamtext as k

RUN_DIR = "/run/kamailio"


def ctl_socket(run_dir: str, proxy: str) -> str:
    """The control socket's path of ``proxy`` (checked: an absolute path of a closed alphabet)."""
    path = f"{run_dir.rstrip('/')}/kamailio-{k.name(proxy)}.ctl"
    k.path(path)
    return path


def ctl_section(run_dir: str, proxy: str, group: str | None = None) -> str:
    """The lines that load ``ctl`` on ``proxy``'s socket (after the other ``loadmodule`` lines);
    with ``group``, that group may open it too."""
    quoted = k.path(ctl_socket(run_dir, proxy))  # '"/run/kamailio/kamailio-edge-a.ctl"'
    text = ('loadmodule "ctl.so"\n'
            f'modparam("ctl", "binrpc", "unix:{quoted[1:]})\n')
    if group is None:
        return text + 'modparam("ctl", "mode", 0600)\n'
    return text + f'modparam("ctl", "mode", 0660)\nmodparam("ctl", "group", "{k.group(group)}")\n'
