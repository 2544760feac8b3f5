"""The fixed vocabularies of the product: event types, sectors, formats, statuses.

Codes are stable identifiers used in the API, the database and the feeds; labels are French and
only ever shown to people.
"""

from __future__ import annotations

from typing import Final

EVENT_TYPES: Final[dict[str, str]] = {
    "job_dating": "Job dating",
    "forum": "Forum, salon",
    "online_fair": "Salon en ligne",
    "info_session": "Réunion d'information",
    "workshop": "Atelier",
    "conference": "Conférence",
    "company_visit": "Visite d'entreprise",
    "open_day": "Portes ouvertes",
    "recruitment": "Session de recrutement",
    "other": "Autre",
}

# France Travail's numeric event type codes ("API Evénements").
FT_TYPE_CODES: Final[dict[str, str]] = {
    "13": "info_session",
    "14": "forum",
    "15": "conference",
    "16": "workshop",
    "17": "online_fair",
    "18": "job_dating",
    "31": "company_visit",
    "32": "open_day",
}

# The 14 ROME "grands domaines", plus "all" for events open to every sector.
SECTORS: Final[dict[str, str]] = {
    "A": "Agriculture et pêche, espaces naturels et espaces verts, soins aux animaux",
    "B": "Arts et façonnage d'ouvrages d'art",
    "C": "Banque, assurance, immobilier",
    "D": "Commerce, vente et grande distribution",
    "E": "Communication, média et multimédia",
    "F": "Construction, bâtiment et travaux publics",
    "G": "Hôtellerie-restauration, tourisme, loisirs et animation",
    "H": "Industrie",
    "I": "Installation et maintenance",
    "J": "Santé",
    "K": "Services à la personne et à la collectivité",
    "L": "Spectacle",
    "M": "Support à l'entreprise",
    "N": "Transport et logistique",
    "all": "Tous secteurs",
}

FORMATS: Final[dict[str, str]] = {
    "onsite": "Sur place",
    "online": "En ligne",
    "hybrid": "Sur place et en ligne",
}

EVENT_STATUSES: Final[dict[str, str]] = {
    "scheduled": "Programmé",
    "cancelled": "Annulé",
    "postponed": "Reporté",
}

REGISTRATION_STATUSES: Final[dict[str, str]] = {
    "confirmed": "Confirmée",
    "waitlisted": "Liste d'attente",
    "cancelled": "Annulée",
    "attended": "Présent",
    "absent": "Absent",
}

# Registrations that hold a seat or a place in the queue.
LIVE_REGISTRATION_STATUSES: Final[tuple[str, ...]] = (
    "confirmed",
    "waitlisted",
    "attended",
    "absent",
)

AGENCY_KINDS: Final[dict[str, str]] = {
    "france_travail": "France Travail",
    "mission_locale": "Mission locale",
    "cap_emploi": "Cap emploi",
    "apec": "Apec",
    "employer": "Employeur",
    "other": "Autre organisme",
}

FEED_FORMATS: Final[dict[str, str]] = {
    "ft-json": "JSON France Travail",
    "ics": "iCalendar",
    "csv": "Tableur CSV",
    "ft-api": "API France Travail",
    "jsonld": "Page web schema.org (JSON-LD)",
}

ATTENDANCE_MODES: Final[dict[str, str]] = {"onsite": "Sur place", "remote": "À distance"}
