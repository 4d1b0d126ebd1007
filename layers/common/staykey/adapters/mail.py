"""The guest's email: the PIN (for the doors with a keypad), how to open the doors with app access
(the Nuki app, with the invitation Nuki sends), the room and the window in the room's local time,
text and HTML, in English or German by the guest's locale (English for anything else). Sent
through SES (v1 SendEmail, which moto implements too) once every lock holds what the guest is
told, never before."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from staykey.adapters.aws import LazyClient
from staykey.core.timeutil import format_local


@dataclass(frozen=True)
class GuestNotice:
    to: str
    guest_name: str
    locale: str
    room_name: str
    pin: str
    valid_from: datetime
    valid_until: datetime
    timezone: str
    booking_id: str
    updated: bool = False
    keypad: bool = True  # some door opens with the PIN on its keypad
    app: bool = False  # some door opens with the Nuki app (an app authorization for the guest)
    # Doors that take another code (a backup code, services.backup): (lock id, the door's name, its code).
    doors: tuple[tuple[int, str, str], ...] = ()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_TEXTS = {
    "en": {
        "subject": "Your door code for {room}",
        "subject_updated": "Updated door code for {room}",
        "hello": "Hello {name},",
        "intro": "your stay is ready. Enter this code on the keypad of each door of {room}:",
        "intro_updated": "your stay has changed. From now on, enter this code on the keypad of each door of {room}:",
        "from": "Valid from",
        "until": "Valid until",
        "howto": "Type the six digits on the Nuki Keypad; the door opens within a few seconds.",
        "outside": "Outside these times the code does not open the door.",
        "ref": "Booking",
        "bye": "Have a good stay!",
        "backup": "At this door, enter this code instead (the door could not take yours in time):",
        "subject_app": "Your access to {room}",
        "intro_app": "your stay is ready. You open the doors of {room} with the Nuki app on your phone.",
        "intro_mixed": (
            "your stay is ready. Enter this code on the keypad of the doors of {room} that have one "
            "(the others open with the Nuki app):"
        ),
        "app_howto": (
            "Nuki has sent an invitation to {email}. Install the Nuki app, sign in or register with this "
            "address and accept the invitation within 48 hours: the door then shows in the app, and the "
            "app opens it within these times."
        ),
    },
    "de": {
        "subject": "Ihr Türcode für {room}",
        "subject_updated": "Geänderter Türcode für {room}",
        "hello": "Hallo {name},",
        "intro": "Ihr Aufenthalt ist vorbereitet. Geben Sie diesen Code am Keypad jeder Tür von {room} ein:",
        "intro_updated": (
            "Ihr Aufenthalt hat sich geändert. Geben Sie ab jetzt diesen Code am Keypad jeder Tür von {room} ein:"
        ),
        "from": "Gültig ab",
        "until": "Gültig bis",
        "howto": "Tippen Sie die sechs Ziffern am Nuki Keypad; die Tür öffnet sich nach wenigen Sekunden.",
        "outside": "Außerhalb dieser Zeiten öffnet der Code die Tür nicht.",
        "ref": "Buchung",
        "bye": "Einen schönen Aufenthalt!",
        "backup": "An dieser Tür geben Sie stattdessen diesen Code ein (sie konnte Ihren nicht rechtzeitig erhalten):",
        "subject_app": "Ihr Zugang zu {room}",
        "intro_app": (
            "Ihr Aufenthalt ist vorbereitet. Sie öffnen die Türen von {room} mit der Nuki App auf Ihrem Handy."
        ),
        "intro_mixed": (
            "Ihr Aufenthalt ist vorbereitet. Geben Sie diesen Code am Keypad der Türen von {room} ein, die eines "
            "haben (die anderen öffnen Sie mit der Nuki App):"
        ),
        "app_howto": (
            "Nuki hat eine Einladung an {email} geschickt. Installieren Sie die Nuki App, melden Sie sich mit "
            "dieser Adresse an oder registrieren Sie sich, und nehmen Sie die Einladung innerhalb von 48 Stunden "
            "an: Die Tür erscheint dann in der App, und die App öffnet sie in diesen Zeiten."
        ),
    },
}


BIG = '"font-size:22px;letter-spacing:3px;font-weight:bold"'


def language(locale: str) -> str:
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in _TEXTS else "en"


def render(notice: GuestNotice) -> Rendered:
    lang = language(notice.locale)
    t = _TEXTS[lang]
    start = format_local(notice.valid_from, notice.timezone, lang)
    end = format_local(notice.valid_until, notice.timezone, lang)
    room = notice.room_name
    if not notice.keypad:
        subject = t["subject_app"].format(room=room)
        intro = t["intro_app"].format(room=room)
    else:
        subject = t["subject_updated" if notice.updated else "subject"].format(room=room)
        intro = (t["intro_mixed"] if notice.app else t["intro_updated" if notice.updated else "intro"]).format(
            room=room
        )
    pin_spaced = f"{notice.pin[:3]} {notice.pin[3:]}"
    app_howto = t["app_howto"].format(email=notice.to) if notice.app else ""
    howto = [t["howto"]] if notice.keypad else []
    doors = [(name, f"{code[:3]} {code[3:]}") for _, name, code in notice.doors]
    backup = [line for name, code in doors for line in (f"{name}: {t['backup']}", f"    {code}", "")]
    text = "\n".join(
        [
            t["hello"].format(name=notice.guest_name),
            "",
            intro,
            "",
            *([f"    {pin_spaced}", ""] if notice.keypad else []),
            *backup,
            f"{t['from']}: {start}",
            f"{t['until']}: {end}",
            "",
            *howto,
            *([app_howto] if app_howto else []),
            t["outside"],
            "",
            f"{t['ref']}: {notice.booking_id}",
            t["bye"],
        ]
    )
    e = html.escape
    pin_html = (
        f'<p style="font-size:28px;letter-spacing:4px;font-weight:bold">{e(pin_spaced)}</p>' if notice.keypad else ""
    )
    body = (
        f'<!doctype html><html lang="{lang}"><body style="font-family:sans-serif">'
        f"<p>{e(t['hello'].format(name=notice.guest_name))}</p>"
        f"<p>{e(intro)}</p>"
        f"{pin_html}"
        + "".join(f"<p>{e(name)}: {e(t['backup'])}</p><p style={BIG}>{e(code)}</p>" for name, code in doors)
        + f"<table><tr><td>{e(t['from'])}</td><td>{e(start)}</td></tr>"
        f"<tr><td>{e(t['until'])}</td><td>{e(end)}</td></tr></table>"
        f"<p>{'<br>'.join(e(line) for line in [*howto, *([app_howto] if app_howto else []), t['outside']])}</p>"
        f"<p>{e(t['ref'])}: {e(notice.booking_id)}<br>{e(t['bye'])}</p>"
        "</body></html>"
    )
    return Rendered(subject=subject, text=text, html=body)


class Mailer(Protocol):
    def send(self, notice: GuestNotice) -> str: ...


class SesMailer:
    client = LazyClient("ses")

    def __init__(self, sender: str, client: Any | None = None) -> None:
        self.sender = sender
        self._client = client

    def send(self, notice: GuestNotice) -> str:
        rendered = render(notice)
        res = self.client.send_email(
            Source=self.sender,
            Destination={"ToAddresses": [notice.to]},
            Message={
                "Subject": {"Data": rendered.subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": rendered.text, "Charset": "UTF-8"},
                    "Html": {"Data": rendered.html, "Charset": "UTF-8"},
                },
            },
        )
        return str(res.get("MessageId", ""))
