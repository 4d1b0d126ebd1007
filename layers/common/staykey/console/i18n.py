"""The console's words in English and German. A message's English text is its key; a German
translation missing here shows the English one (a test keeps the table complete)."""

from __future__ import annotations

LANGUAGES = ("en", "de")

DE: dict[str, str] = {
    "Today": "Heute",
    "Bookings": "Buchungen",
    "Locks": "Schlösser",
    "Activity": "Aktivität",
    "Audit log": "Protokoll",
    "Sign in": "Anmelden",
    "Sign out": "Abmelden",
    "Signed in as": "Angemeldet als",
    "Skip to content": "Zum Inhalt springen",
    "StayKey console": "StayKey-Konsole",
    "Username or email": "Benutzername oder E-Mail",
    "Password": "Passwort",
    "New password": "Neues Passwort",
    "Set a new password": "Neues Passwort festlegen",
    "Your first sign-in: choose your own password.": "Ihre erste Anmeldung: wählen Sie Ihr eigenes Passwort.",
    "Wrong username or password.": "Benutzername oder Passwort falsch.",
    "Please sign in.": "Bitte melden Sie sich an.",
    "Your session has expired or is not valid; please sign in again.": (
        "Ihre Sitzung ist abgelaufen oder ungültig; bitte melden Sie sich erneut an."
    ),
    "The request was refused: it did not come from this console's page (CSRF check).": (
        "Die Anfrage wurde abgelehnt: Sie kam nicht von einer Seite dieser Konsole (CSRF-Prüfung)."
    ),
    "Sign-in is not possible right now; please try again.": (
        "Anmelden ist gerade nicht möglich; bitte erneut versuchen."
    ),
    "Needs attention": "Braucht Aufmerksamkeit",
    "Nothing needs attention.": "Nichts braucht Aufmerksamkeit.",
    "Arrivals": "Anreisen",
    "Departures": "Abreisen",
    "In house": "Im Haus",
    "No arrivals today.": "Heute keine Anreisen.",
    "No departures today.": "Heute keine Abreisen.",
    "Nobody in house.": "Niemand im Haus.",
    "Room": "Zimmer",
    "Guest": "Gast",
    "Booking": "Buchung",
    "Status": "Status",
    "Stay": "Aufenthalt",
    "Ready": "Bereit",
    "Readiness": "Bereitschaft",
    "ready": "bereit",
    "not ready": "nicht bereit",
    "code confirmed on every lock": "Code auf jedem Schloss bestätigt",
    "code not yet on every lock": "Code noch nicht auf jedem Schloss",
    "online": "online",
    "offline": "offline",
    "unknown": "unbekannt",
    "battery critical": "Batterie kritisch",
    "keypad battery critical": "Keypad-Batterie kritisch",
    "Lock": "Schloss",
    "Battery": "Batterie",
    "Keypad": "Keypad",
    "Last seen": "Zuletzt gesehen",
    "Codes": "Codes",
    "ours": "unsere",
    "others'": "fremde",
    "free": "frei",
    "not counted yet": "noch nicht gezählt",
    "Online": "Online",
    "ok": "ok",
    "critical": "kritisch",
    "Filter": "Filtern",
    "Search": "Suchen",
    "all": "alle",
    "From": "Von",
    "To": "Bis",
    "Guest name or email": "Name oder E-Mail des Gastes",
    "Next page": "Nächste Seite",
    "First page": "Erste Seite",
    "No bookings match.": "Keine Buchung passt.",
    "Timeline": "Verlauf",
    "Actions": "Aktionen",
    "Early checkout": "Vorzeitiger Checkout",
    "Cancel booking": "Buchung stornieren",
    "Re-send email": "E-Mail erneut senden",
    "Retry": "Erneut versuchen",
    "Rotate PIN": "PIN wechseln",
    "Reveal PIN": "PIN anzeigen",
    "Confirm": "Bestätigen",
    "Back": "Zurück",
    "Are you sure?": "Sind Sie sicher?",
    "The PIN stops working now and is removed from every lock.": (
        "Die PIN funktioniert ab sofort nicht mehr und wird von jedem Schloss entfernt."
    ),
    "The booking is cancelled and its code removed from every lock.": (
        "Die Buchung wird storniert und ihr Code von jedem Schloss entfernt."
    ),
    "The guest gets the email with their code again.": "Der Gast erhält die E-Mail mit seinem Code erneut.",
    "Every failed lock is tried again.": "Jedes fehlgeschlagene Schloss wird erneut versucht.",
    "A new PIN goes on every lock beside the old one; once all have it, the guest is told and the old one goes.": (
        "Eine neue PIN kommt neben der bisherigen auf jedes Schloss; sobald jedes Schloss sie hat, wird der Gast "
        "informiert, dann wird die alte PIN entfernt."
    ),
    "The PIN is shown to you once, and this is written to the audit log.": (
        "Die PIN wird Ihnen einmal gezeigt, und das wird im Protokoll vermerkt."
    ),
    "PIN": "PIN",
    "PIN rotation": "PIN-Wechsel",
    "pending": "läuft",
    "failed, still trying": "fehlgeschlagen, wird weiter versucht",
    "requested": "angefordert",
    "the current PIN keeps working until the new one is on every lock": (
        "die bisherige PIN gilt weiter, bis die neue auf jedem Schloss ist"
    ),
    "PIN rotation requested": "PIN-Wechsel angefordert",
    "PIN rotated": "PIN gewechselt",
    "hidden": "verborgen",
    "The guest's PIN": "Die PIN des Gastes",
    "Done": "Erledigt",
    "Refused": "Abgelehnt",
    "created": "angelegt",
    "sent to Nuki": "an Nuki gesendet",
    "code confirmed on lock": "Code auf Schloss bestätigt",
    "guest emailed": "Gast per E-Mail informiert",
    "first entry": "erster Zutritt",
    "entry": "Zutritt",
    "failed attempt": "fehlgeschlagener Versuch",
    "code removed from lock": "Code vom Schloss entfernt",
    "status now": "Status jetzt",
    "changed": "geändert",
    "scheduled": "geplant",
    "putting the code on the locks": "Code wird auf die Schlösser gebracht",
    "code on every lock": "Code auf jedem Schloss",
    "failed": "fehlgeschlagen",
    "checkout": "Checkout",
    "checked out early": "vorzeitig ausgecheckt",
    "stay ended": "Aufenthalt beendet",
    "code removed from every lock": "Code von jedem Schloss entfernt",
    "cancelled": "storniert",
    "operator action": "Aktion einer Bedienperson",
    "When": "Wann",
    "Who": "Wer",
    "What": "Was",
    "Where": "Wo",
    "Outcome": "Ergebnis",
    "not a guest": "kein Gast",
    "failed attempts only": "nur fehlgeschlagene Versuche",
    "No activity.": "Keine Aktivität.",
    "No entries.": "Keine Einträge.",
    "Upcoming bookings": "Kommende Buchungen",
    "none": "keine",
    "on the lock": "auf dem Schloss",
    "reserved": "reserviert",
    "failed bookings": "fehlgeschlagene Buchungen",
    "at risk": "gefährdet",
    "offline locks": "Schlösser offline",
    "locks near 200 codes": "Schlösser nahe 200 Codes",
    "dead-letter messages": "Nachrichten in Dead-Letter-Queues",
    "webhooks": "Webhooks",
    "Nuki webhooks are not registered: activity comes from polling only.": (
        "Nuki-Webhooks sind nicht registriert: Aktivität kommt nur über Abfragen."
    ),
    "Webhooks lapsed: entries in the last 24 hours reached us only by polling.": (
        "Webhooks ausgefallen: Einträge der letzten 24 Stunden kamen nur über Abfragen."
    ),
    "Language": "Sprache",
    "Rooms": "Zimmer",
    "Checkout": "Abreise",
    "Check-in": "Anreise",
    "Valid": "Gültig",
    "Reason": "Grund",
    "Email": "E-Mail",
    "sent": "gesendet",
    "not sent": "nicht gesendet",
    "guest data removed": "Gastdaten gelöscht",
    "all locks": "alle Schlösser",
    "Page not found.": "Seite nicht gefunden.",
    "Something went wrong; it has been logged.": "Etwas ist schiefgegangen; es wurde protokolliert.",
    "in stay order": "nach Aufenthalt sortiert",
    "Times are in the room's time zone.": "Zeiten in der Zeitzone des Zimmers.",
    # Staff codes (console.staff)
    "Staff codes": "Personal-Codes",
    "Staff code": "Personal-Code",
    "New staff code": "Neuer Personal-Code",
    "Create staff code": "Personal-Code anlegen",
    "No staff codes.": "Keine Personal-Codes.",
    "by id": "nach ID",
    "Name": "Name",
    "ID": "ID",
    "Schedule": "Zeitplan",
    "Dates": "Zeitraum",
    "Weekdays": "Wochentage",
    "From (time)": "Von (Uhrzeit)",
    "Until (time)": "Bis (Uhrzeit)",
    "First day (optional)": "Erster Tag (optional)",
    "Last day (optional)": "Letzter Tag (optional)",
    "until it is removed": "bis er entfernt wird",
    "every day": "täglich",
    "all day": "ganztägig",
    "Mon": "Mo",
    "Tue": "Di",
    "Wed": "Mi",
    "Thu": "Do",
    "Fri": "Fr",
    "Sat": "Sa",
    "Sun": "So",
    "Created": "Angelegt",
    "Changed": "Geändert",
    "Error": "Fehler",
    "Operator actions": "Aktionen von Bedienpersonen",
    "The staff code's PIN": "Die PIN des Personal-Codes",
    "Remove": "Entfernen",
    "The staff code is removed from every lock: its PIN stops opening the doors.": (
        "Der Personal-Code wird von jedem Schloss entfernt: seine PIN öffnet die Türen nicht mehr."
    ),
    "A new PIN goes on every lock beside the old one; once all have it, the old one goes.": (
        "Eine neue PIN kommt neben der bisherigen auf jedes Schloss; sobald jedes Schloss sie hat, wird die alte "
        "entfernt."
    ),
    "The staff code was not created; please correct the fields marked.": (
        "Der Personal-Code wurde nicht angelegt; bitte korrigieren Sie die markierten Felder."
    ),
    "No times: all day. Times and days are in the first room's time zone; the lock applies the schedule.": (
        "Ohne Uhrzeiten: ganztägig. Uhrzeiten und Tage gelten in der Zeitzone des ersten Zimmers; das Schloss "
        "wendet den Zeitplan an."
    ),
    "Backup codes": "Ersatz-Codes",
    "Give backup code": "Ersatz-Code vergeben",
    "Each keypad lock the guest's code is not confirmed on gets one of its backup codes for this booking.": (
        "Jedes Keypad-Schloss, auf dem der Code des Gastes nicht bestätigt ist, vergibt einen seiner Ersatz-Codes "
        "an diese Buchung."
    ),
    "shown with Reveal PIN": "angezeigt mit „PIN anzeigen“",
    "Given": "Vergeben",
    "On the lock": "Auf dem Schloss",
    "Code": "Code",
    "holds": "gültig",
    "not confirmed on the lock": "auf dem Schloss nicht bestätigt",
    "The backup code": "Der Ersatz-Code",
    "an operator asked for it": "auf Wunsch einer Bedienperson",
    "the code could not be confirmed on this lock in time": (
        "der Code konnte auf diesem Schloss nicht rechtzeitig bestätigt werden"
    ),
}


def translate(language: str, text: str) -> str:
    if language == "de":
        return DE.get(text, text)
    return text


def pick_language(cookie: str | None, accept: str | None) -> str:
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"
