"""A PIN rotation's shell steps that the sync engine needs besides its rounds: another new PIN
when the one chosen turns out to be someone else's code on a lock (409).

The rotation itself is the booking's (`Booking.rotation`, `Booking.rotationCodes`): started by
`services.bookings.Bookings.rotate_pin` (`core.commands.rotate`), carried by the sync engine's
rounds like the booking's own code (`core.decide`: the new code is written, confirmed by the one
rule of `core.onlock` on every path, and the booking switches to it once every lock confirmed it;
the old codes go once the guest was told), and ended with the booking (`core.commands.end`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from staykey.core import commands
from staykey.core.models import Booking
from staykey.core.pins import generate_pin
from staykey.errors import UpstreamUnavailable
from staykey.observability import count, logger
from staykey.store import PinTaken

if TYPE_CHECKING:
    from staykey.services.sync import Sync


def choose_again(sync: Sync, booking: Booking, conflicts: dict[int, str | None]) -> Booking:
    """Someone else's code holds the rotation's new PIN on a lock: choose another, claimed on every
    lock of the rotation, within the booking's bounded number of choices (then the rotation's
    locks fail; the old PIN keeps working). The booking as saved."""
    from staykey.services.sync import rewrite

    rotation = booking.rotation
    if rotation is None:
        return booking
    now = sync.clock.now()
    old = rotation.pin
    lock_ids = [lk.smartlockId for lk in booking.rotationCodes if lk.desired == "present"]
    avoid = sync.store.known_codes(lock_ids) | set(booking.pinHistory)
    for _ in range(25):
        pin = generate_pin(avoid, sync.pin_choice)
        choose = partial(
            commands.rotation_conflict,
            old_pin=old,
            pin=pin,
            conflicts=set(conflicts),
            max_choices=sync.settings.max_pin_choices,
            now=now,
        )
        try:
            updated, result = rewrite(sync.store, booking.bookingId, choose, now)
        except PinTaken:
            avoid.add(pin)
            continue
        if result is None:
            return updated  # the rotation changed or ended meanwhile
        changed = updated.rotation is not None and updated.rotation.pin != old
        count("PinChosenAgain" if changed else "ProvisioningFailed")
        logger.info("the rotation's new PIN was taken on a lock", booking_id=booking.bookingId, chose_another=changed)
        return updated
    raise UpstreamUnavailable("could not reserve another PIN; try again")


__all__ = ["choose_again"]
