"""The whole set of files: the static ones from ``asterisk-conf/`` and the generated ones, rendered
through the checked writer (:mod:`ivr.core.conftext`) and written atomically (secrets 0640)."""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import shutil
from pathlib import Path

from ivr.asterisk_conf.asterisk import asterisk_conf
from ivr.asterisk_conf.globals import globals_conf
from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE
from ivr.asterisk_conf.manager import manager_conf
from ivr.asterisk_conf.node import edge_files, node_settings
from ivr.asterisk_conf.node_seats import device_state_mesh
from ivr.asterisk_conf.numbers import numbers_dialplan
from ivr.asterisk_conf.options import EXTRA_FILES, RenderOptions
from ivr.asterisk_conf.out_of_scope import out_of_scope_dialplan, out_of_scope_features
from ivr.asterisk_conf.pjsip import pjsip_conf
from ivr.asterisk_conf.supervision import supervise_dialplan
from ivr.asterisk_conf.queues import agents_dialplan, callback_keys, queue_dialplan, queues_conf
from ivr.asterisk_conf.recording import recording_dialplan
from ivr.asterisk_conf.transfers import transfer_targets
from ivr.asterisk_conf.webrtc import http_conf, rtp_ice
from ivr.config import ConfigError, Settings
from ivr.core.conftext import UnsafeValue, guard

STATIC_DIR = Path(__file__).resolve().parents[2] / "asterisk-conf"
STATIC_FILES = (
    "modules.conf",
    "extensions.conf",
    "pjsip.conf",
    "cdr.conf",
    "cdr_custom.conf",
    "logger.conf",
    "musiconhold.conf",
    "queuerules.conf",
    "features.conf",
    "indications.conf",
    "stasis.conf",
    "cel.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
    "confbridge.conf",
    "sorcery.conf",
)


def render(settings: Settings, options: RenderOptions) -> dict[str, str]:
    """All configuration files, by file name. Every value from outside goes through the checked
    writer (:mod:`ivr.core.conftext`); a value that would break a file's syntax is a ConfigError."""
    try:
        # extra files are whole files (the test bed's dialplan), not values: only their names are checked
        guard(settings, dataclasses.replace(options, extra_files={}))
        if unknown := sorted(set(options.extra_files) - set(EXTRA_FILES)):
            raise ConfigError(f"no such extra file to render: {', '.join(unknown)} (only {', '.join(EXTRA_FILES)})")
        return _render(settings, options)
    except UnsafeValue as exc:
        raise ConfigError(f"refused to render Asterisk's configuration: {exc}") from None


def _render(settings: Settings, options: RenderOptions) -> dict[str, str]:
    # from the carrier's addresses, not the node's view
    edge = edge_files(settings, options.kamailio_dir, options.probe_interval_s, options.agent_secrets,
                      options.kamailio_run_dir)
    settings, maxcalls = node_settings(settings, options.node), settings.sip.maxcalls  # a node's own view (node.py)
    if settings.cluster is not None and (node := options.node) is not None:
        options = dataclasses.replace(options, system_name=node)
        maxcalls = settings.cluster.nodes[node].maxcalls
    files = {name: (STATIC_DIR / name).read_text(encoding="utf-8") for name in STATIC_FILES}
    files.update(
        {
            "asterisk.conf": asterisk_conf(options, maxcalls),
            "manager.conf": manager_conf(settings, options),
            "pjsip_generated.conf": pjsip_conf(settings, options) + device_state_mesh(settings, options.node),
            "http.conf": http_conf(settings),
            "rtp.conf": f"[general]\nrtpstart={settings.sip.rtp_start}\nrtpend={settings.sip.rtp_end}\n" + rtp_ice(settings),
            "queues.conf": queues_conf(settings),
            "extensions_globals.conf": globals_conf(settings, options),
            "extensions_queues.conf": queue_dialplan(settings),
            "extensions_agents.conf": agents_dialplan(settings),
            "extensions_callback.conf": callback_keys(settings),
            "extensions_recording.conf": recording_dialplan(settings),
            "extensions_numbers.conf": numbers_dialplan(settings),
            "extensions_agent_transfers.conf": transfer_targets(settings),
            "extensions_transfers.conf": transfer_targets(settings),  # the same in [ivr-transfers]
            "extensions_bridge.conf": transfer_targets(settings, goto="dial,1"),
            "extensions_supervise.conf": supervise_dialplan(settings),
            **{name: options.extra_files.get(name, "") for name in EXTRA_FILES},
            "extensions_out_of_scope.conf": out_of_scope_dialplan(settings),
            "features_out_of_scope.conf": out_of_scope_features(settings),
            **edge,
        }
    )
    return files


SECRET_FILES = ("manager.conf", "pjsip_generated.conf")
# read by Kamailio only (the seats' digest keys): 0600, owned by Debian's kamailio user when there is one
KAMAILIO_SECRET_FILES = (SECRETS_FILE,)


def write(settings: Settings, options: RenderOptions, out_dir: Path) -> list[Path]:
    """Write every file atomically. Files holding secrets are 0640 and, when an ``asterisk``
    group exists (Debian's Asterisk runs as that user), owned by that group."""
    return write_files(render(settings, options), out_dir)


def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write files already rendered (a cluster reload renders every node before it writes any)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        group = grp.getgrnam("asterisk").gr_gid if os.geteuid() == 0 else -1
    except KeyError:
        group = -1
    written = []
    for name, text in files.items():
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        mode = 0o600 if name in KAMAILIO_SECRET_FILES else 0o640 if name in SECRET_FILES else 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if name in SECRET_FILES and group >= 0:
            os.chown(tmp, -1, group)
        if name in KAMAILIO_SECRET_FILES:
            _own_by_kamailio(tmp)
        os.replace(tmp, path)
        written.append(path)
    return written


def _own_by_kamailio(path: Path) -> None:
    """Debian's kamailio.service runs as the kamailio user: the 0600 file must be its own."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("kamailio")
    except KeyError:
        return
    os.chown(path, user.pw_uid, user.pw_gid)


def copy_static(out_dir: Path) -> None:
    """Copy only the static files (used when building the Docker image)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in STATIC_FILES:
        shutil.copy2(STATIC_DIR / name, out_dir / name)
