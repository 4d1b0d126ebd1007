"""What every Nuki call tells the operator, whichever code made it (the client's `on_request` hook).

A 401 means Nuki refused our API token: account-wide, an operator's fix, and it stops every read and
write alike (provisioning, removal, polling, reconciling). So it is counted where it is seen, on any
call, not only on a booking's write: `NukiTokenRejected` has an alarm (template.yaml).
"""

from __future__ import annotations

from staykey.nuki import NukiCall
from staykey.observability import count, logger


def observe_call(call: NukiCall) -> None:
    if call.status == 401:
        count("NukiTokenRejected")
        logger.error("Nuki rejected our API token (401); check the token secret", nuki_operation=call.path)


__all__ = ["observe_call"]
