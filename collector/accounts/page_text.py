"""The words of the account pages (sign-in, home, password, sharing), in Dutch and English."""

from __future__ import annotations

from collector.incidents.text import Lang

TEXT: dict[str, dict[Lang, str]] = {
    "sign_in": {"en": "Sign in", "nl": "Inloggen"},
    "sign_in_with": {"en": "Sign in with {label}", "nl": "Inloggen met {label}"},
    "sign_out": {"en": "Sign out", "nl": "Uitloggen"},
    "username": {"en": "Username", "nl": "Gebruikersnaam"},
    "password": {"en": "Password", "nl": "Wachtwoord"},
    "sign_in_failed": {
        "en": "Signing in did not work: the username or password is wrong, or the account may not "
              "sign in now. After 5 wrong tries an account waits 15 minutes.",
        "nl": "Inloggen is niet gelukt: de gebruikersnaam of het wachtwoord klopt niet, of het account "
              "mag nu niet inloggen. Na 5 foute pogingen wacht een account 15 minuten."},
    "form_expired": {
        "en": "This form is out of date or came from another site. Open the page again and retry.",
        "nl": "Dit formulier is verlopen of kwam van een andere site. Open de pagina opnieuw."},
    "home": {"en": "schoolnet collector", "nl": "schoolnet collector"},
    "signed_in_as": {"en": "Signed in as", "nl": "Ingelogd als"},
    "role": {"en": "Role", "nl": "Rol"},
    "board": {"en": "Board", "nl": "Bestuur"},
    "no_board": {"en": "none", "nl": "geen"},
    "report": {"en": "Provider comparison report", "nl": "Vergelijking van aanbieders"},
    "schools": {"en": "Schools you see one by one", "nl": "Scholen die u per school ziet"},
    "no_schools": {"en": "None: you see schools only inside the report's aggregates.",
                   "nl": "Geen: u ziet scholen alleen in de totalen van het rapport."},
    "benchmark": {"en": "benchmark", "nl": "vergelijking"},
    "incidents": {"en": "incidents", "nl": "storingen"},
    "sharing": {"en": "Sharing with the cooperative's analysts",
                "nl": "Delen met de analisten van de coöperatie"},
    "shared_yes": {"en": "shared", "nl": "gedeeld"},
    "shared_no": {"en": "not shared", "nl": "niet gedeeld"},
    "change_password": {"en": "Change password", "nl": "Wachtwoord wijzigen"},
    "current_password": {"en": "Current password", "nl": "Huidig wachtwoord"},
    "new_password": {"en": "New password", "nl": "Nieuw wachtwoord"},
    "new_password_again": {"en": "New password again", "nl": "Nieuw wachtwoord nogmaals"},
    "password_rules": {
        "en": "At least 12 characters, not containing your username. Changing it signs you out "
              "everywhere else.",
        "nl": "Minstens 12 tekens, zonder uw gebruikersnaam. Na het wijzigen bent u overal elders "
              "uitgelogd."},
    "password_changed": {"en": "Your password is changed; every other session has ended.",
                         "nl": "Uw wachtwoord is gewijzigd; alle andere sessies zijn beëindigd."},
    "current_wrong": {"en": "The current password is not right (after 5 wrong tries the account waits "
                            "15 minutes).",
                      "nl": "Het huidige wachtwoord klopt niet (na 5 foute pogingen wacht het account "
                            "15 minuten)."},
    "passwords_differ": {"en": "The two new passwords differ.", "nl": "De twee nieuwe wachtwoorden "
                         "verschillen."},
    "password_same": {"en": "The new password is the same as the current one.",
                      "nl": "Het nieuwe wachtwoord is gelijk aan het huidige."},
    "password_weak": {"en": "The new password is refused", "nl": "Het nieuwe wachtwoord is geweigerd"},
    "no_account": {"en": "This page is for people who signed in with an account; an admin token has "
                         "no password.",
                   "nl": "Deze pagina is voor wie met een account is ingelogd; een beheertoken heeft geen "
                         "wachtwoord."},
    "save": {"en": "Save", "nl": "Opslaan"},
    "back": {"en": "Home", "nl": "Start"},
    "sharing_now_yes": {
        "en": "This board shares its schools with the cooperative's analysts (since {when}).",
        "nl": "Dit bestuur deelt zijn scholen met de analisten van de coöperatie (sinds {when})."},
    "sharing_now_no": {"en": "This board does not share its schools with the cooperative's analysts.",
                       "nl": "Dit bestuur deelt zijn scholen niet met de analisten van de coöperatie."},
    "sharing_means": {
        "en": "Shared: the cooperative's analysts see this board's schools one by one in the "
              "provider comparison report: each school's line, its measurements against the "
              "contract, its costs. Not shared: analysts see this board's schools only inside "
              "aggregates of at least {minimum} schools, never one school's figures. Your own "
              "board's accounts always see its schools, whatever you choose here.",
        "nl": "Gedeeld: de analisten van de coöperatie zien de scholen van dit bestuur per school in "
              "de vergelijking van aanbieders: de lijn van elke school, de metingen tegen het "
              "contract, de kosten. Niet gedeeld: analisten zien de scholen van dit bestuur alleen "
              "in totalen van minstens {minimum} scholen, nooit de cijfers van één school. De "
              "accounts van uw eigen bestuur zien de scholen altijd, wat u hier ook kiest."},
    "share_yes": {"en": "Share this board's schools one by one with the analysts",
                  "nl": "Deel de scholen van dit bestuur per school met de analisten"},
    "share_no": {"en": "Do not share: analysts see them only in aggregates",
                 "nl": "Niet delen: analisten zien ze alleen in totalen"},
    "read_only": {"en": "Only this board's admins (or the collector's admin) may change this.",
                  "nl": "Alleen de beheerders van dit bestuur (of van de collector) kunnen dit wijzigen."},
    "forbidden": {"en": "Not permitted", "nl": "Geen toegang"},
    "not_found": {"en": "Not found", "nl": "Niet gevonden"},
    "no_board_found": {"en": "There is no board with this id.", "nl": "Er is geen bestuur met deze id."},
    "bad_choice": {"en": "Choose shared or not shared.", "nl": "Kies gedeeld of niet gedeeld."},
}


def say(lang: Lang, key: str, **values: object) -> str:
    text = TEXT[key][lang]
    return text.format(**values) if values else text
