"""pjsip_generated.conf: the transport, the carrier gateway, the agents' softphones and the trunks."""

from __future__ import annotations

from typing import Mapping

from ivr.asterisk_conf.edge_out import pstn_aor
from ivr.asterisk_conf.node_seats import QUALIFY_S, proxied_aor
from ivr.asterisk_conf.options import RenderOptions
from ivr.asterisk_conf.webrtc import WEB_AOR, web_auth_note, web_endpoint_options, web_media, ws_transport
from ivr.asterisk_conf.supervision import SUPERVISOR_CONTEXT, supervisor_password
from ivr.config import ConfigError, Settings, agent_secret
from ivr.core.conftext import comment, secret, value, word
from ivr.core.qualify import Qualify
from ivr.core.secret_policy import agent_secret_variable, supervisor_secret_variable
from transfer.control import TRANSFERS_CONTEXT
from transfer.model import EMERGENCY_TRUNK, EmergencyTrunk, Platform, SubCenter

MEDIA = "disallow=all\nallow=ulaw,alaw\nrtp_symmetric=yes\ndirect_media=no\nlanguage=zh\n"
WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def media(s: Settings) -> str:
    """MEDIA with the address RTP binds to and puts in SDP. Without one, Asterisk binds RTP to
    0.0.0.0 and, setting up every call leg's RTCP, looks up the host's own name and then
    A.ROOT-SERVERS.NET (acl.c ``ast_find_ourip``): on a network without DNS each lookup
    stalls the call for seconds, and under load calls are lost."""
    address = s.sip.media_address or s.sip.bind
    if address in WILDCARDS:
        raise ConfigError(
            f"sip.bind is {s.sip.bind or 'empty'}: set sip.media_address to this server's address for RTP "
            "(otherwise Asterisk looks up its own host name and A.ROOT-SERVERS.NET on every call)"
        )
    return MEDIA + f"media_address={address}\nbind_rtp_to_media_address=yes\n"


def endpoint(name: str, context: str, identify_by: str, media: str = MEDIA) -> str:
    """A PJSIP endpoint with its AOR of the same name: an agent's phone or a trunk."""
    return f"""[{word(name)}]
type=endpoint
context={word(context)}
identify_by={identify_by}
dtmf_mode=rfc4733
aors={name}
{media}"""


def seat_password(name: str, secrets: Mapping[str, str]) -> str:
    """An agent phone's SIP password: the render's own, else ``IVR_AGENT_SECRET_<NAME>``; none is an error."""
    password = secrets.get(name) or agent_secret(name)
    if not password:
        raise ConfigError(f"agent {name}: no SIP password (set {agent_secret_variable(name)})")
    return password


def seat_auth(name: str, secrets: Mapping[str, str], web: bool) -> str:
    """A seat's digest account in the file; none for a web phone, whose ``<name>-auth`` Asterisk
    finds in AstDB (sorcery.conf), put there by the console for each sign-in (webrtc.py)."""
    if web:
        return web_auth_note(name)
    return phone_auth(name, seat_password(name, secrets), agent_secret_variable(name))


def registrar_phones(s: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """The phones a cluster's proxies register (name → SIP password): every seat's, and each
    supervisor's softphone (one without a fixed contact), so any node reaches it."""
    phones = {name: seat_password(name, secrets) for name in s.agents}
    phones.update({name: supervisor_password(name, secrets) for name, sup in s.supervision.supervisors.items()
                   if not sup.contact})
    return phones


def phone_auth(name: str, password: str, variable: str) -> str:
    """A phone's digest account (a seat's or a supervisor's): the password from ``variable``."""
    return f"""[{name}-auth]
type=auth
auth_type=userpass
username={name}
password={secret(password, variable)}
"""


def phone_aor(name: str, contact: str | None, probe: Qualify | None = None) -> str:
    """A phone's one registration (a newer one replaces it), or its fixed ``contact``; ``probe``:
    its OPTIONS probe (an agent's phone: unreachable is not rung), None: dialed blind."""
    aor = f"""
[{name}]
type=aor
max_contacts=1
remove_existing=yes
{qualify_options(probe)}"""
    return aor + (f"contact={value(contact)}\n" if contact else "")


def qualify_options(q: Qualify | None) -> str:
    """An AOR's OPTIONS probe: a gateway or phone that stops answering is unreachable, so Dial
    fails at once (CHANUNAVAIL), app_queue skips the seat, and its device state is UNAVAILABLE (what
    the engine shows). None (a platform, which is another 12345: its own failure is told by its
    answer; a supervisor's phone) or ``every: 0``: off."""
    if q is None or not q.every:
        return "qualify_frequency=0\n"
    return f"qualify_frequency={value(str(q.every))}\nqualify_timeout={value(str(q.timeout))}\n"


UNPROBED = Qualify(every=0)  # a supervisor's phone, as on one node: only a dead proxy is found


def proxied_probe(q: Qualify) -> str:
    """The qualify of a seat's contacts at the proxies (node_seats.py). With the phones probed, at
    their rhythm and reachable only on a 2xx (Asterisk takes any other answer for a live peer): a
    proxy passes the probe on to the seat's phone and answers 480 for a seat with no live contact
    (kamailio_seats.py). ``every: 0``: only a dead proxy is found, every :data:`QUALIFY_S` s."""
    if not q.every:
        return f"qualify_frequency={QUALIFY_S}\n"
    return qualify_options(q) + "qualify_2xx_only=yes\n"


def pjsip_conf(s: Settings, o: RenderOptions) -> str:
    rtp = media(s)
    parts = [
        f"""[transport-udp]
type=transport
protocol=udp
bind={value(s.sip.bind)}:{s.sip.port}
""" + ws_transport(s),
        f"""; Citizens' calls arrive from the carrier gateway, identified by address.
[pstn]
type=endpoint
context=from-pstn
identify_by=ip
dtmf_mode=rfc4733
{rtp}
[pstn]
type=identify
endpoint=pstn
"""
        + "".join(f"match={value(m)}\n" for m in s.sip.pstn_match),
    ]
    if aor := pstn_aor(s):  # calls out to citizens (callbacks): the carrier's gateway, or the proxies
        parts[1] = parts[1].replace("identify_by=ip\n", "identify_by=ip\naors=pstn\n", 1)
        parts.append(aor)
    for name, agent in s.agents.items():
        # also for a desk phone with a fixed contact: its calls (feature codes, transfers) are
        # identified by user name, which only the password makes true
        web = agent.phone == "web"  # the desk page's WebRTC phone (webrtc.py)
        # behind proxies the proxies check the seat's digest against its own secret (kamailio_seats.py),
        # so there a web seat keeps its account in this file; alone, a fresh one per sign-in in AstDB
        proxied = s.cluster is not None and bool(s.cluster.proxies)
        block = f"; seat: {comment(agent.name)}\n" + endpoint(name, "from-agents", "username",
                                                                web_media(rtp) if web else rtp)
        if web:
            block += web_endpoint_options(s)
        # transfers (REFER, and atxfer's number) land among the transfer targets only: no feature
        # code, and no catch-all that would keep an attended transfer waiting for more digits
        # SPYGROUP: the seat's own channels, as ChanSpy picks them for a supervisor (supervision.py)
        block += f"""set_var=SPYGROUP={name}
set_var=TRANSFER_CONTEXT={TRANSFERS_CONTEXT}
auth={name}-auth

{seat_auth(name, o.agent_secrets, web and not proxied)}"""
        # behind proxies the phone registers there, where the seat's lock is; a fixed contact
        # (refused in config/ behind proxies, kept for a test bed's own phones) is dialed as given
        if proxied and not agent.contact:
            block += proxied_aor(name, s, proxied_probe(s.phones.qualify))
            parts.append(block)
            continue
        probe = s.phones.qualify if s.phones.qualify.probes(agent.contact) else None
        parts.append(block + phone_aor(name, agent.contact, probe) + (WEB_AOR if web else ""))
    for name, sup in s.supervision.supervisors.items():
        # a supervisor's phone is called, it never calls in: its own calls are hung up (supervision.py);
        # behind proxies a softphone registers there like a seat's, so whichever node holds the
        # supervised call reaches it (node_seats.py)
        aor = proxied_aor(name, s, proxied_probe(UNPROBED)) if s.cluster is not None and s.cluster.proxies and not sup.contact \
            else phone_aor(name, sup.contact)
        parts.append(f"; supervisor: {comment(sup.name)}\n" + endpoint(name, SUPERVISOR_CONTEXT, "username", rtp)
                     + f"auth={name}-auth\n\n"
                     + phone_auth(name, supervisor_password(name, o.agent_secrets), supervisor_secret_variable(name))
                     + aor)
    trunks: list[tuple[str, SubCenter | EmergencyTrunk | Platform]] = list(s.subcenters.items())
    if s.emergency is not None:
        trunks.append((EMERGENCY_TRUNK, s.emergency))
    contexts = {name: "from-pstn" for name, _ in trunks}
    trunks += list(s.platforms.items())  # their calls to us arrive in [from-platform] (ticket header)
    for name, sub in trunks:
        parts.append(
            f"; trunk: {comment(sub.title)}\n"
            + endpoint(name, contexts.get(name, "from-platform"), "ip", rtp)
            + f"""
[{name}]
type=aor
contact=sip:{value(sub.host)}:{sub.port}
{qualify_options(None if isinstance(sub, Platform) else sub.qualify)}
[{name}]
type=identify
endpoint={name}
match={value(sub.host)}:{sub.port}
"""
        )
    return "\n".join(parts)
