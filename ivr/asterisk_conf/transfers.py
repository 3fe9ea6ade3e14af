"""The transfer targets as dialplan, for agents' own transfers, the engine's and three-party bridges."""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import arg, word
from transfer.control import closed_variable, targets


def transfer_targets(s: Settings, *, goto: str = "ivr-route,transfer,1") -> str:
    """The transfer targets (:func:`transfer.control.targets`), one extension each, through the
    same route as the IVR's transfers (result and fallback on the ticket). Included in
    ``[from-agents]`` (an agent dials, blind-transfers by REFER or consults for an attended
    transfer) and ``[ivr-transfers]`` (the engine); with ``goto="dial,1"``, in ``[ivr-bridge]``
    (three-party bridges)."""
    out = []
    for key, target in sorted(targets(s).items()):
        lines = [f"exten => {word(key)},1,NoOp(transfer to {arg(target.title)})"]
        variables = {k: v for k, v in target.route.variables().items() if k != "IVR_ROUTE"}
        sc = s.subcenters.get(target.route.trunk)
        if sc is not None and sc.hours is not None:
            # published by the engine (transfer/ami.py HoursPublisher); empty without it: dialed
            variables["IVR_TRANSFER_CLOSED"] = f"${{{closed_variable(target.route.trunk)}}}"
        lines += [f" same => n,Set({k}={arg(v) if k != 'IVR_TRANSFER_CLOSED' else v})" for k, v in variables.items()]
        out.append("\n".join([*lines, f" same => n,Goto({goto})"]) + "\n")
    return "".join(out)
