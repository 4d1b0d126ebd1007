"""A look at many locks' codes (the watcher's hot check, the sweep: `services.checks`) that shows a
booking's code changed in Nuki tells the booking at once, as a `DEVICE_AUTHS` webhook would, even when
the lock has gone offline and the reconciler must wait for it (simulator seed 22, issue 17: a code
disabled in Nuki Web just before its lock went offline; the booking later turned `active` on it)."""

from __future__ import annotations

from staykey.core.models import BookingStatus
from staykey.services.checks import LockChecks
from staykey.services.watch import watch_settings
from tests.functional.reconciler.conftest import Rig

LOCK = 17000099


def test_a_code_disabled_in_nuki_web_on_a_lock_gone_offline_takes_the_booking_out_of_active(rig: Rig) -> None:
    # Given an active booking, and its code on one lock disabled in Nuki Web, that lock then offline
    rig.book()
    rig.active()
    world = rig.world
    lock = world.nuki.locks[LOCK]
    auth_id, auth = next(iter(lock.auths.items()))
    world.clock.advance(minutes=1)
    lock.auths[auth_id] = auth.model_copy(update={"enabled": False, "update_date": world.clock.now()})
    world.nuki.set_online(LOCK, False)
    settings = world.bookings.settings
    checks = LockChecks(
        settings, watch_settings(settings), world.store, lambda: world.nuki, rig.rec, rig.queue, world.clock
    )  # type: ignore[arg-type, return-value]
    # When the watcher's check reads the lock's codes
    listing = checks.read([LOCK], None)
    assert checks.check(LOCK, listing, "check") == "queued"
    # Then the booking is no longer active (the engine sends its code again), and the reconciler is
    # asked to look at the lock (it waits while the lock is offline)
    assert rig.booking().status != BookingStatus.ACTIVE
    assert [job.smartlockId for job in rig.queue.drain()] == [LOCK]
