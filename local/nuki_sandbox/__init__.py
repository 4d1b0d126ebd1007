"""Nuki sandbox: an in-memory, thread-safe stand-in for ``https://api.nuki.io``.

It answers the Nuki Web API calls StayKey makes with the paths, bodies, statuses and asynchrony
of Nuki's spec 4.18.0 (as overlaid by ``local.nuki_spec``), and adds control routes under
``/_sim`` to drive it from tests and the local stack. It is judged by the spec, not by our client:
it imports nothing from ``staykey``; stdlib plus ``local.nuki_spec`` only.

Run it::

    python -m local.nuki_sandbox --host 127.0.0.1 --port 4010   # defaults from LOCAL_NUKI_PORT,
                                                                # NUKI_API_TOKEN, NUKI_SIM_SYNC_DELAY_SECONDS

or in-process: ``running = start_sandbox(port=0, sync_delay=0.1)``; ``running.url``,
``running.sandbox`` (the ``NukiSandbox``), ``running.stop()`` (also a context manager).

Nuki routes (Bearer token required, else 401 with Nuki's body)
----------------------------------------------------------------

``GET /smartlock``, ``GET /smartlock/{smartlockId}``, ``POST /smartlock/{smartlockId}/sync``,
``GET /smartlock/{smartlockId}/auth`` (``types``), ``GET /smartlock/auth`` (``types``,
``accountUserId``), ``GET /smartlock/{smartlockId}/auth/{id}``, ``PUT /smartlock/{smartlockId}/auth``,
``PUT /smartlock/auth`` (``smartlockIds``), ``POST /smartlock/{smartlockId}/auth/{id}``,
``DELETE /smartlock/{smartlockId}/auth/{id}``, ``DELETE /smartlock/auth`` (JSON array of ids),
``GET /smartlock/{smartlockId}/log``, ``GET /smartlock/log``, ``GET|PUT /api/decentralWebhook``,
``DELETE /api/decentralWebhook/{id}``, ``GET|PUT /account/user``,
``GET|POST|DELETE /account/user/{accountUserId}`` (account users: ``local.nuki_sandbox.accounts``).

Decisions (where the sources leave room, what the sandbox does and why)
-------------------------------------------------------------------------

Asynchrony. Create, update and delete answer 204 with no body and are *pending*: they show in
reads only after the sync delay (``sync_delay``, runtime-configurable; a change applies to
writes accepted afterwards). A clock thread applies due writes, so webhooks go out even when
nobody reads. Writes for an offline lock wait; when it comes back online they land one sync
delay later. ``POST /smartlock/{id}/sync`` applies an online lock's pending writes before it
answers 204 (for an offline lock it answers 204 and nothing changes). Create returns no id; the
auth gets its ``id`` (24-hex, ObjectId-like) and ``authId`` (per-lock integer counting from 2;
1 is the account's own authorization, ``Smartlock.authId``) when it is applied.

Conflicts. While an update or delete of an auth is pending the auth shows ``operationId`` (a
24-hex string: Nuki serialises the ObjectId as a string, see the overlay note in
``local.nuki_spec``) and any further write on it answers 423 with Nuki's observed body
``{"stackTrace": [], "suppressedExceptions": []}``. A keypad code may exist once per lock: a
create (or an update to a new code) answers 409 when the code is visible on the lock (even with
a delete pending, or stored with an error) or comes with a pending create or update.
``PUT /smartlock/auth`` checks every lock first and is all-or-nothing on 400, 409 and 422.

Validation, in Nuki's order: body schema (missing ``name``/``remoteAllowed``, ``code`` as a
string, ...) 400; unknown lock 400 on the create routes; ``type`` other than 0, 2, 13 400; type 13
on a lock without keypad 400 ``The supplied value '13' for parameter 'type' is not valid``;
missing code 400 ``... value 'null' for parameter 'code' ...``; code not 6 digits 1-9 or starting
with 12 400; type 0/2 without ``accountUserId`` 400; keypad-code name over 20 characters 422 with
Restlet's body (other names over 32: 400); then 409. A JSON ``null`` counts as "not sent" (forum
86 clears ``allowedUntilDate`` with null). An update replaces the restriction set as a whole
(omitted ``allowed*`` fields are cleared, as forum 40095 observed) and keeps ``code``,
``enabled``, ``remoteAllowed`` and ``accountUserId`` when they are omitted.

Unknown ids answer only statuses the spec declares for the operation: ``GET /smartlock/{id}``
404; auth list, auth get/update/delete, bulk delete (any unknown id, all-or-nothing) and webhook
delete 403; create and sync 400 (``The supplied value '...' for parameter 'smartlockId' ...``);
a lock's log 200 ``[]`` (the log routes declare no error but 401).

200 keypad codes per lock. Nuki accepts the create (204; the Web API cannot know what the device
holds) and the device refuses it: the documented API-triggered error is ``0x29
K_ERROR_TOO_MANY_ENTRIES``, and ``SmartlockAuth.error`` "contains the error message". So when a
keypad code is applied on a lock that already holds 200 working codes, it is stored with
``error: "K_ERROR_TOO_MANY_ENTRIES (0x29): ..."``, announced by ``DEVICE_AUTHS`` like any other,
never opens the door, does not count towards the 200, and keeps its code taken (409) until it
is deleted. A client must read ``error`` and not take a listed code for a working one.

Logs. Newest first (by date, then id); ``id`` is the "older than" cursor (an id the sandbox
never issued is compared as an ObjectId); ``limit`` defaults to 20 and is capped at 50 (larger
answers 50; below 1 is a 400); ``fromDate``/``toDate`` must be RFC 3339 (Unix numbers answer 400
``The supplied value '1788213600' for parameter 'fromDate' is not valid``) and are inclusive.
A keypad entry logs action 1, trigger 255, source 1, deviceType 4 (the lock's type), state 0 with
``authId`` = the auth's 24-hex ``id`` and ``name`` = its name, or state 224 with no auth and an
empty name. It succeeds only for a working code (applied, no error, enabled) inside
``allowedFromDate``..``allowedUntilDate`` (both inclusive), on an allowed weekday (64 = Monday
... 1 = Sunday; 0 or absent = every day) and inside ``allowedFromTime``..``allowedUntilTime``
(lock-local minutes; 0/0 = all day; a window may run over midnight). The lock's zone is the
control field ``timezone`` (IANA, default UTC); ``Smartlock.config.timezoneId`` stays 0. The
keypad talks to the lock, not to Nuki's servers, so entries work on an offline lock too; their log
entries show at once (a real lock would upload them when it is back).

Webhooks. ``PUT /api/decentralWebhook`` answers ``{id, secret, webhookUrl, webhookFeatures}``
with a 64-hex random secret; ``GET`` lists registrations without the secret (as a peer reports
Nuki does); ``DELETE`` removes one (403 if unknown). ``webhookUrl`` must be https, except that
http to a loopback host (127.0.0.1, localhost, ::1) is accepted so a local stack can receive
webhooks without TLS; Nuki itself would refuse it. Deliveries are POSTs with
``Content-Type: application/json; charset=UTF-8`` and ``X-Nuki-Signature-SHA256`` = lowercase hex
HMAC-SHA256(key = secret as UTF-8, message = the exact body bytes), sent in event order by one
background thread, only for the registration's features, tried up to three times (after 0.2 s
and 1 s; configurable) on a non-2xx answer or no answer; every delivery is logged at
``GET /_sim/webhooks/deliveries``. Payloads (nuki-web-api.md 7.3): ``DEVICE_AUTHS``
``{"feature", "deleted", "smartlockAuth"}`` when a create, update or delete is applied (and for
``/_sim`` auths); ``DEVICE_LOGS`` ``{"feature", "smartlockLog"}`` for every log entry;
``DEVICE_STATUS`` (the official example's shape) when a lock goes on/offline or a battery value
changes. Ghost deletes and writes that never apply send nothing.

Faults (``PUT /_sim/faults``) hit Nuki routes only, never ``/_sim``. Per request, one seeded draw:
below ``errorRate`` the answer is one of ``statuses`` (429 carries ``Retry-After: 1``) and the
request has no effect; below ``errorRate + timeoutRate`` the request is held ``timeoutSeconds``
and the connection closed without an answer, the write having been applied with probability 0.5
(seeded). ``ghostDeletes: n`` makes the next n deletes (single or bulk) answer 204 and never
apply. Injected answers are outside the spec on purpose: they model the network and Nuki's
front end, not the API. ``latencySeconds`` (``PUT /_sim/config``) is added to every Nuki call.

Smart Hosting. Every lock reports ``currentSubscription`` (a ``ShsSubscription`` as the spec has
it: B2B, BUSINESS, a year from the lock's creation) with state ``ACTIVE`` unless the control field
``subscription`` says another state of the spec's enum, or ``null`` (then the lock reports none).
The sandbox does not refuse writes on a lock whose subscription is not active: which status and
body Nuki answers then is unconfirmed (docs/nuki-sandbox.md), so StayKey checks the state itself.

Not modelled: the ``ACCOUNT_USER`` webhook, ``/smartlock/auth/paged``, the Advanced API routes, bulk
``POST /smartlock/auth``, refusals for a lapsed subscription, rate limiting (use faults).

Control routes
--------------

``GET /_sim/health``; ``GET /_sim/smartlocks`` (every lock's full state);
``POST /_sim/smartlocks`` (``{"smartlockId", "name", "keypad",
"keypad2", "online", "type", "timezone", "subscription", battery fields}`` -> 201 Smartlock);
``GET|PATCH /_sim/smartlocks/{id}`` (full state incl. pending writes | ``{"online", "name",
"keypad", "keypad2", "timezone", "subscription", "batteryCharge", "batteryCritical",
"batteryCharging", "keypadBatteryCritical", "doorsensorBatteryCritical"}`` -> Smartlock);
``POST /_sim/smartlocks/{id}/keypad`` ``{"code", "date"?}`` -> ``{"success", "logId"}``;
``POST /_sim/smartlocks/{id}/log`` (SmartlockLog fields, ``action`` and ``trigger`` required) ->
201 entry; ``POST /_sim/smartlocks/{id}/app`` ``{"accountUserId", "date"?}`` -> ``{"success",
"logId"}`` (an app entry); ``GET|POST /_sim/account-users`` (an account user added in Nuki
Web); ``POST /_sim/smartlocks/{id}/auths`` (SmartlockAuthCreate fields, type 13 and
``remoteAllowed: false`` by default, ``enabled``) -> 201 SmartlockAuth, visible at once;
``GET|PUT|DELETE /_sim/faults``; ``GET|PUT /_sim/config`` (``syncDelaySeconds``,
``latencySeconds``, ``webhookRetryDelaysSeconds``); ``GET|DELETE /_sim/requests``
(``[{"method", "path", "query", "status", "at"}]``, status null for a dropped connection);
``GET|DELETE /_sim/webhooks/deliveries``; ``DELETE /_sim/state`` (reset everything, config too).
"""

from local.nuki_sandbox.server import RunningSandbox, SandboxHTTPServer, start_sandbox
from local.nuki_sandbox.state import DEFAULT_SYNC_DELAY_SECONDS, DEFAULT_TOKEN, NukiSandbox
from local.nuki_sandbox.webhooks import SIGNATURE_HEADER, sign

__all__ = [
    "DEFAULT_SYNC_DELAY_SECONDS",
    "DEFAULT_TOKEN",
    "SIGNATURE_HEADER",
    "NukiSandbox",
    "RunningSandbox",
    "SandboxHTTPServer",
    "sign",
    "start_sandbox",
]
