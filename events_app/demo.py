"""A realistic demo data set: agencies across France and their events over the coming weeks.

The same function loads the few hundred events of a demonstration and the hundreds of
thousands of a benchmark. Everything follows from the seed (and `now` for the dates), so two
loads with the same seed on the same communes give the same agencies, titles and places.

Events are written with bulk inserts (a list of dicts, batch by batch), which skip the ORM
mapper events: the derived columns (geo_cell, search_key) are computed here with the
functions the mapper event uses, and nothing keeps the rows once a batch is written.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from events_app.agencies import create_agency
from events_app.events import sanitise_html
from events_app.models import (
    Agency,
    Commune,
    CommunePostalCode,
    Event,
    EventSector,
    Registration,
    fold_text,
    geo_cell,
    search_key,
)
from events_app.places import DEPARTMENTS
from events_app.vocab import EVENT_TYPES, FORMATS, SECTORS

PARIS: Final = ZoneInfo("Europe/Paris")
# Overseas departments keep their own clocks: their events are held in local hours.
_OVERSEAS_ZONES: Final[dict[str, str]] = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "976": "Indian/Mayotte",
}
HORIZON_DAYS: Final = 56  # 8 weeks
BATCH_SIZE: Final = 5_000
# Above this many events the load is a benchmark: events spread over all of France by
# population, and only a bounded number of registrations (a few full events).
LARGE: Final = 5_000
MAX_FULL_EVENTS_LARGE: Final = 300

T = TypeVar("T")
NBSP: Final = "\u00a0"  # French typography: a non-breaking space before : ; ? ! %


@dataclass(frozen=True)
class DemoSummary:
    agencies: int
    events: int
    registrations: int


# --- Vocabulary of the generated content -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SectorWords:
    metiers: str | None  # "les métiers de la santé"; None for "all"
    domaine: str  # what a description says: "dans {domaine}"
    job: str  # plural job title for recruitment sessions


_SECTOR_WORDS: Final[dict[str, _SectorWords]] = {
    "A": _SectorWords(
        "les métiers de l'agriculture et des espaces verts",
        "les métiers de l'agriculture et des espaces verts",
        "ouvriers agricoles et jardiniers paysagistes",
    ),
    "B": _SectorWords("les métiers d'art", "les métiers d'art", "ébénistes et tapissiers"),
    "C": _SectorWords(
        "les métiers de la banque et de l'assurance",
        "la banque, l'assurance et l'immobilier",
        "conseillers clientèle",
    ),
    "D": _SectorWords(
        "les métiers du commerce et de la vente",
        "le commerce et la grande distribution",
        "employés de libre-service et vendeurs",
    ),
    "E": _SectorWords(
        "les métiers du numérique et de la communication",
        "la communication et le numérique",
        "développeurs web et chargés de communication",
    ),
    "F": _SectorWords(
        "les métiers du bâtiment et des travaux publics",
        "le bâtiment et les travaux publics",
        "maçons, électriciens et conducteurs d'engins",
    ),
    "G": _SectorWords(
        "les métiers de l'hôtellerie-restauration",
        "l'hôtellerie, la restauration et le tourisme",
        "serveurs, cuisiniers et réceptionnistes",
    ),
    "H": _SectorWords(
        "les métiers de l'industrie",
        "l'industrie",
        "opérateurs de production et soudeurs",
    ),
    "I": _SectorWords(
        "les métiers de la maintenance",
        "l'installation et la maintenance",
        "techniciens de maintenance",
    ),
    "J": _SectorWords("les métiers de la santé", "la santé", "aides-soignants et infirmiers"),
    "K": _SectorWords(
        "les métiers des services à la personne",
        "les services à la personne",
        "auxiliaires de vie et agents d'entretien",
    ),
    "L": _SectorWords(
        "les métiers du spectacle", "le spectacle vivant", "techniciens du spectacle"
    ),
    "M": _SectorWords(
        "les métiers de la gestion et de l'administration",
        "les fonctions support de l'entreprise",
        "assistants administratifs et comptables",
    ),
    "N": _SectorWords(
        "les métiers du transport et de la logistique",
        "le transport et la logistique",
        "préparateurs de commandes et conducteurs routiers",
    ),
    "all": _SectorWords(None, "tous les secteurs d'activité", "agents polyvalents"),
}

# Made-up companies (no real brand), one or two per sector, for company visits; none of
# them is one of the employer agencies below, whose events are in their own town.
_COMPANIES: Final[dict[str, tuple[str, ...]]] = {
    "A": ("Pépinières du Val Fleuri", "Coopérative des Coteaux"),
    "B": ("Atelier Lumière et Bois",),
    "C": ("Mutuelle des Quatre Vents", "Crédit Solidaire de l'Ouest"),
    "D": ("Boulangeries Marceau", "Épicerie fine Le Comptoir Doré"),
    "E": ("Studio Pixelune",),
    "F": ("Travaux publics Roche-Blanche", "Charpentes Lemaire"),
    "G": ("Brasserie des Deux Places", "Auberge du Vieux Pressoir"),
    "H": ("Plasturgie Vercors", "Usinage de la Combe"),
    "I": ("Thermique Services Ouest",),
    "J": ("Clinique du Parc Fleuri", "Ehpad Les Jardins d'Alice"),
    "K": ("Maison Aubépine Services", "Propreté Arc-en-Ciel"),
    "L": ("Théâtre de la Roseraie",),
    "M": ("Cabinet Duval et Associés",),
    "N": ("Messageries Arc-Atlantique", "Logistique des Deux Rives"),
    "all": ("Groupe Mistral Industries",),
}

# Employer agencies: (name, sectors, address in an activity zone).
_EMPLOYERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("Transports Vermeil", ("N",)),
    ("Clinique des Tilleuls", ("J", "K")),
    ("Forges de la Vallée", ("H", "I")),
    ("Hôtel du Grand Cèdre", ("G",)),
    ("Bâtiments Carrel et Fils", ("F",)),
    ("Halles du Marché Neuf", ("D", "N")),
)

# France Travail agencies in big cities are named after their neighbourhood.
_FT_SITES: Final[dict[str, tuple[str, ...]]] = {
    "Lyon": ("Part-Dieu", "Vaise", "Gerland"),
    "Marseille": ("Joliette", "Castellane", "Saint-Marcel"),
    "Toulouse": ("Compans-Caffarelli", "Mirail", "Minimes"),
    "Nice": ("Arénas", "Saint-Roch"),
    "Nantes": ("Beaulieu", "Malakoff"),
    "Montpellier": ("Antigone", "Celleneuve"),
    "Strasbourg": ("Neudorf", "Meinau"),
    "Bordeaux": ("Bastide", "Mériadeck"),
    "Lille": ("Vauban", "Fives"),
    "Rennes": ("Colombier", "Maurepas"),
}

_STREETS: Final[tuple[str, ...]] = (
    "rue Victor-Hugo",
    "avenue Jean-Jaurès",
    "boulevard Gambetta",
    "rue de la République",
    "rue Pasteur",
    "avenue du Général-de-Gaulle",
    "rue Jules-Ferry",
    "place de l'Hôtel-de-Ville",
    "rue des Tilleuls",
    "allée des Acacias",
    "rue du Moulin",
    "avenue de la Gare",
    "rue Nationale",
    "rue de la Paix",
    "quai des Saules",
    "rue Émile-Zola",
    "boulevard de la Liberté",
    "rue Jean-Moulin",
    "avenue Aristide-Briand",
    "rue de l'Église",
    "rue des Écoles",
    "rue Marie-Curie",
    "chemin des Vignes",
    "rue Simone-Veil",
)
_ACTIVITY_STREETS: Final[tuple[str, ...]] = (
    "ZA des Prés, rue de l'Industrie",
    "ZI Nord, avenue de l'Europe",
    "parc d'activités des Landes, allée Gutenberg",
    "ZAC du Grand Champ, rue Denis-Papin",
)
_VENUES: Final[tuple[str, ...]] = (
    "Salle des fêtes",
    "Maison de l'emploi et de la formation",
    "Hôtel de ville, salle du conseil",
    "Médiathèque municipale",
    "Centre des congrès",
    "Maison des associations",
    "Cité des métiers",
    "Salle polyvalente",
    "Espace culturel",
    "Pépinière d'entreprises",
)
_BIG_VENUES: Final[tuple[str, ...]] = (
    "Parc des expositions",
    "Centre des congrès",
    "Halle aux grains",
)

_ACCESSIBILITY: Final[tuple[str, ...]] = (
    "Salle accessible en fauteuil roulant, boucle magnétique à l'accueil.",
    "Accès de plain-pied ; places de stationnement réservées devant le bâtiment.",
    "Interprète en langue des signes française (LSF) sur demande, au moins 5 jours avant.",
    "Ascenseur jusqu'à la salle ; documents disponibles en gros caractères.",
)
_ONLINE_ACCESSIBILITY: Final = (
    "Sous-titrage en direct ; plateforme compatible avec les lecteurs d'écran."
)
_CANCELLATIONS: Final[tuple[str, ...]] = (
    "Événement annulé faute d'un nombre suffisant d'entreprises participantes.",
    "L'entreprise a suspendu ses recrutements : cet événement est annulé. Une nouvelle date "
    "vous sera proposée.",
    "Annulé en raison d'une alerte météo. Les personnes inscrites sont prévenues par courriel.",
    "La salle n'est plus disponible à cette date : l'événement est annulé.",
)

_FIRST_NAMES: Final[tuple[str, ...]] = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Emma", "Jade", "Zoé", "Anaïs",
    "Élodie", "Fatoumata", "Aïcha", "Nathalie", "Sandrine", "Hélène", "Océane", "Maëlle",
    "Thomas", "Lucas", "Hugo", "Nicolas", "Karim", "Mehdi", "Julien", "Maxime", "Théo",
    "Mamadou", "Kévin", "Jérôme", "François", "Stéphane", "Loïc", "Rémi", "Noé", "Yanis",
    "Benoît", "Grégory", "Sébastien", "Anthony",
)  # fmt: skip
_LAST_NAMES: Final[tuple[str, ...]] = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Benali", "Diallo", "Nguyen", "Traoré", "Haddad",
    "Da Silva", "Le Gall", "Kerbrat", "Rousseau", "Faure", "Chevalier", "Gauthier", "Texier",
)  # fmt: skip

# Title templates per type. {metiers} and {company} are filled from the sector; templates
# naming {metiers} are skipped for "all" sectors.
_TITLES: Final[dict[str, tuple[str, ...]]] = {
    "job_dating": (
        "Job dating{c} {metiers}",
        "Job dating{c} {metiers}",
        "Job dating{c} {job} (H/F)",
        "Job dating multisectoriel",
        "Job dating de l'alternance",
    ),
    "forum": (
        "Forum de l'emploi",
        "Forum de l'emploi saisonnier",
        "Salon de l'emploi et de la formation",
        "Forum{c} {metiers} recrutent",
        "Forum de l'alternance",
    ),
    "online_fair": (
        "Salon en ligne{c} {metiers}",
        "Salon en ligne de l'alternance",
        "Salon en ligne des recrutements saisonniers",
        "Salon en ligne des métiers qui recrutent",
    ),
    "info_session": (
        "Réunion d'information{c} créer son entreprise",
        "Réunion d'information{c} {metiers}",
        "Réunion d'information{c} {metiers}",
        "Réunion d'information{c} l'alternance, mode d'emploi",
        "Réunion d'information{c} la préparation opérationnelle à l'emploi",
    ),
    "workshop": (
        "Atelier CV et lettre de motivation",
        "Atelier{c} réussir son entretien d'embauche",
        "Atelier{c} valoriser ses compétences",
        "Atelier numérique{c} candidater en ligne",
        "Atelier{c} se reconvertir vers {metiers}",
        "Atelier{c} les réseaux sociaux dans sa recherche d'emploi",
    ),
    "conference": (
        "Conférence{c} quel avenir pour {metiers}{q}",
        "Conférence{c} l'intelligence artificielle et l'emploi",
        "Conférence{c} réussir sa reconversion professionnelle",
        "Conférence{c} l'égalité professionnelle entre les femmes et les hommes",
    ),
    "company_visit": (
        "Visite de l'entreprise {company}",
        "Visite d'entreprise{c} découvrir {metiers}",
    ),
    "open_day": (
        "Portes ouvertes{c} découvrez {metiers}",
        "Journée portes ouvertes chez {company}",
        "Portes ouvertes du centre de formation",
    ),
    "recruitment": (
        "Session de recrutement{c} {job} (H/F)",
        "Recrutement collectif{c} {job} (H/F)",
    ),
    "other": (
        "Café de l'emploi",
        "Matinée de l'emploi{c} {metiers}",
        "Permanence emploi des jeunes",
        "Journée découverte des métiers",
    ),
}
_KIND_TITLES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("cap_emploi", "forum"): ("Forum emploi et handicap",),
    ("cap_emploi", "workshop"): ("Atelier{c} parler de son handicap en entretien",),
    ("cap_emploi", "info_session"): ("Réunion d'information{c} la RQTH et l'emploi",),
    ("mission_locale", "workshop"): ("Atelier jeunes{c} premier emploi, premiers pas",),
    ("mission_locale", "info_session"): ("Réunion d'information{c} le Contrat d'engagement jeune",),
    ("apec", "workshop"): ("Atelier cadres{c} définir son projet professionnel",),
    ("apec", "conference"): ("Conférence cadres{c} négocier sa rémunération",),
    ("apec", "online_fair"): ("Salon en ligne des cadres et des jeunes diplômés",),
}

_DESCRIPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "job_dating": (
        "<p>Rencontrez en quelques minutes des employeurs qui recrutent dans {domaine}. "
        "Pas de CV à envoyer à l'avance : venez avec l'envie de convaincre.</p>"
        "<ul><li>Des entretiens courts de 10 minutes</li>"
        "<li>Des offres en CDI, CDD et alternance</li>"
        "<li>Des conseillers pour vous préparer sur place</li></ul>"
        "<p>Pensez à apporter plusieurs exemplaires de votre CV.</p>",
        "<p>Un format rapide et convivial pour décrocher un entretien dans {domaine}.</p>"
        "<ul><li>Présentation des entreprises et de leurs postes</li>"
        "<li>Entretiens individuels</li></ul>",
    ),
    "forum": (
        "<p>Plus de quarante exposants, entreprises, organismes de formation et partenaires "
        "de l'emploi, vous attendent pour parler {de_domaine}.</p>"
        "<ul><li>Des offres d'emploi à pourvoir tout de suite</li>"
        "<li>Des ateliers CV en continu</li>"
        "<li>Un espace conseil sur la formation et la reconversion</li></ul>",
        "<p>Entrée libre sur inscription. Préparez votre visite : repérez les exposants et "
        "apportez des CV à jour.</p>",
    ),
    "online_fair": (
        "<p>Un salon 100 % en ligne : consultez les offres dans {domaine}, postulez en un clic "
        "et échangez avec les recruteurs par visioconférence.</p>"
        "<ul><li>Depuis un ordinateur ou un téléphone</li>"
        "<li>Des entretiens planifiés dans la journée</li></ul>",
    ),
    "info_session": (
        "<p>Une réunion collective pour tout comprendre et poser vos questions sur "
        "{domaine}.</p><ul><li>Les métiers et les conditions de travail</li>"
        "<li>Les formations financées</li><li>Les aides à la reprise d'emploi</li></ul>",
        "<p>Présentation suivie d'un temps d'échange avec un conseiller.</p>",
    ),
    "workshop": (
        "<p>Un atelier en petit groupe, animé par un conseiller, pour avancer concrètement "
        "dans votre recherche d'emploi.</p><ul><li>Exercices pratiques</li>"
        "<li>Conseils personnalisés</li><li>Un support à emporter</li></ul>"
        "<p>Apportez votre CV, même inachevé.</p>",
        "<p>Places limitées : l'atelier se déroule en groupe de douze personnes au plus.</p>",
    ),
    "conference": (
        "<p>Des experts et des professionnels {de_domaine} partagent leur regard sur les "
        "tendances du marché du travail.</p><ul><li>Tables rondes</li>"
        "<li>Questions du public</li></ul>",
    ),
    "company_visit": (
        "<p>Découvrez de l'intérieur une entreprise qui recrute dans {domaine} : visite des "
        "ateliers, rencontre avec les équipes et présentation des postes à pourvoir.</p>"
        "<ul><li>Chaussures fermées obligatoires</li><li>Pièce d'identité demandée à "
        "l'accueil</li></ul>",
    ),
    "open_day": (
        "<p>Portes ouvertes pour découvrir {domaine} : démonstrations, rencontres avec des "
        "professionnels et des apprentis, informations sur les formations.</p>",
    ),
    "recruitment": (
        "<p>Une session de recrutement collective dans {domaine} : présentation de "
        "l'entreprise, tests d'aptitude puis entretiens individuels.</p>"
        "<ul><li>Postes en CDI et CDD</li><li>Formation assurée à la prise de poste</li>"
        "</ul><p>Venez avec votre CV et une pièce d'identité.</p>",
    ),
    "other": (
        "<p>Un moment d'échange convivial autour de l'emploi dans {domaine}, ouvert à "
        "toutes et à tous.</p>",
    ),
}
_FORMAT_NOTES: Final[dict[str, str]] = {
    "onsite": "",
    "online": "<p>Le lien de connexion vous est envoyé avec la confirmation d'inscription.</p>",
    "hybrid": "<p>Participez sur place ou à distance : vous choisissez en vous inscrivant.</p>",
}

_KIND_TYPE_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "france_travail": {
        "job_dating": 4, "forum": 2, "online_fair": 1, "info_session": 4, "workshop": 5,
        "conference": 1, "company_visit": 2, "open_day": 1, "recruitment": 3, "other": 1,
    },
    "mission_locale": {
        "job_dating": 3, "forum": 1, "online_fair": 0.5, "info_session": 3, "workshop": 5,
        "conference": 0.5, "company_visit": 2, "open_day": 1, "recruitment": 1, "other": 1.5,
    },
    "cap_emploi": {
        "job_dating": 2, "forum": 1.5, "online_fair": 0.5, "info_session": 3, "workshop": 3,
        "conference": 1, "company_visit": 1, "open_day": 0.5, "recruitment": 1, "other": 1,
    },
    "apec": {
        "job_dating": 1, "forum": 1, "online_fair": 2, "info_session": 2, "workshop": 4,
        "conference": 4, "company_visit": 0, "open_day": 0, "recruitment": 1, "other": 1,
    },
    "employer": {
        "job_dating": 3, "forum": 0, "online_fair": 0, "info_session": 2, "workshop": 0,
        "conference": 0, "company_visit": 3, "open_day": 2, "recruitment": 4, "other": 0.5,
    },
}  # fmt: skip
_KIND_WEIGHT: Final[dict[str, float]] = {
    "france_travail": 3,
    "mission_locale": 2,
    "cap_emploi": 1,
    "apec": 1.5,
    "employer": 1,
}
# Share of events open to every sector, by type.
_ALL_SECTORS_SHARE: Final[dict[str, float]] = {
    "job_dating": 0.15, "forum": 0.5, "online_fair": 0.4, "info_session": 0.3,
    "workshop": 0.6, "conference": 0.4, "company_visit": 0.0, "open_day": 0.2,
    "recruitment": 0.05, "other": 0.5,
}  # fmt: skip
_SECTOR_WEIGHTS: Final[dict[str, float]] = {
    "A": 2, "B": 0.5, "C": 1.5, "D": 3, "E": 1.5, "F": 3, "G": 3, "H": 3, "I": 2, "J": 3,
    "K": 3, "L": 0.5, "M": 2, "N": 3,
}  # fmt: skip
_APEC_SECTOR_WEIGHTS: Final[dict[str, float]] = {
    "C": 3, "E": 3, "H": 2, "I": 1, "J": 1, "M": 4, "N": 1,
}  # fmt: skip
# (share without limit, smallest, largest) capacity by type.
_CAPACITY: Final[dict[str, tuple[float, int, int]]] = {
    "job_dating": (0.1, 20, 60), "forum": (0.5, 100, 200), "online_fair": (0.5, 100, 200),
    "info_session": (0.15, 12, 40), "workshop": (0.05, 10, 16), "conference": (0.3, 40, 150),
    "company_visit": (0.0, 10, 20), "open_day": (0.6, 30, 80), "recruitment": (0.05, 10, 30),
    "other": (0.3, 15, 50),
}  # fmt: skip
# (share with a count, smallest, largest) job offers by type.
_JOB_OFFERS: Final[dict[str, tuple[float, int, int]]] = {
    "job_dating": (0.8, 5, 40), "forum": (0.7, 50, 300), "online_fair": (0.8, 30, 250),
    "recruitment": (0.9, 3, 20), "company_visit": (0.4, 2, 10), "open_day": (0.3, 2, 15),
}  # fmt: skip
# (durations in minutes, their weights) by type.
_DURATIONS: Final[dict[str, tuple[tuple[int, ...], tuple[float, ...]]]] = {
    "forum": ((180, 210, 240), (1, 1, 2)),
    "online_fair": ((180, 240), (1, 1)),
    "workshop": ((90, 120, 180), (1, 2, 1)),
    "job_dating": ((120, 180), (2, 1)),
    "open_day": ((180, 240), (1, 1)),
}
_DEFAULT_DURATIONS: Final = ((60, 90, 120, 150), (2, 3, 3, 1))
_ONLINE_ONLY: Final = frozenset({"online_fair"})
_ONSITE_ONLY: Final = frozenset({"company_visit", "open_day"})
_URL_STEMS: Final[dict[str, str]] = {
    "job_dating": "job-dating",
    "forum": "forum",
    "online_fair": "salon",
    "info_session": "reunion",
    "workshop": "atelier",
    "conference": "conference",
    "company_visit": "visite",
    "open_day": "portes-ouvertes",
    "recruitment": "recrutement",
    "other": "rencontre",
}

_TYPES: Final = tuple(EVENT_TYPES)
_SECTOR_CODES: Final = tuple(code for code in SECTORS if code != "all")
_FORMATS: Final = tuple(FORMATS)
_FORCED_SECTORS: Final = (*_SECTOR_CODES, "all")
_FORCED: Final = len(_FORCED_SECTORS)


# --- French grammar ----------------------------------------------------------------------------

_VOWELS: Final = frozenset("aeiouyàâäéèêëîïôöùûüœAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŒ")


def _a_city(city: str) -> str:
    """ "à Lyon", "au Havre", "aux Mureaux", "à La Rochelle"."""
    if city.startswith("Le "):
        return "au " + city[3:]
    if city.startswith("Les "):
        return "aux " + city[4:]
    return "à " + city


def _de_city(city: str) -> str:
    """ "de Lyon", "d'Angers", "du Havre", "des Mureaux"."""
    if city.startswith("Le "):
        return "du " + city[3:]
    if city.startswith("Les "):
        return "des " + city[4:]
    if city[0] in _VOWELS:
        return "d'" + city
    return "de " + city


def _de(phrase: str) -> str:
    """ "des métiers", "du bâtiment", "de la santé", "de l'industrie"."""
    if phrase.startswith("les "):
        return "des " + phrase[4:]
    if phrase.startswith("le "):
        return "du " + phrase[3:]
    return "de " + phrase


_TIGHT_PUNCTUATION: Final = re.compile(r" ([:;?!%»])")


def _typeset(text_: str) -> str:
    """French typography: a non-breaking space before : ; ? ! % and »."""
    return _TIGHT_PUNCTUATION.sub(NBSP + r"\1", text_)


def _slug(text_: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold_text(text_)).strip("-")


# --- Places ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Town:
    insee: str
    city: str  # as shown: "Paris" for "Paris 15e Arrondissement"
    label: str  # as named: "Paris 15e", else the city
    department: str
    population: int
    lat: float
    lon: float
    postal_code: str
    is_arrondissement: bool


_ARRONDISSEMENT_NAME: Final = re.compile(r"^(.+?) (\d+)(?:er|e) Arrondissement$")


def _load_towns(db: Session) -> list[_Town]:
    """Every commune with a postal code, in INSEE order (so draws do not depend on the engine).

    Paris, Lyon and Marseille have no postal code of their own in the data: their
    arrondissements stand in for them, which also spreads their events over the city.
    """
    postal = (
        select(CommunePostalCode.insee, func.min(CommunePostalCode.postal_code).label("code"))
        .group_by(CommunePostalCode.insee)
        .subquery()
    )
    statement = select(
        Commune.insee,
        Commune.name,
        Commune.department,
        Commune.population,
        Commune.lat,
        Commune.lon,
        Commune.is_arrondissement,
        postal.c.code,
    ).join(postal, postal.c.insee == Commune.insee)
    towns = []
    for insee, name, department, population, lat, lon, is_arrondissement, code in db.execute(
        statement
    ):
        city = label = name
        match = _ARRONDISSEMENT_NAME.match(name) if is_arrondissement else None
        if match:
            number = int(match.group(2))
            city = match.group(1)
            label = f"{city} {number}{'er' if number == 1 else 'e'}"
        towns.append(
            _Town(
                insee,
                city,
                label,
                department,
                population or 0,
                lat,
                lon,
                code,
                bool(is_arrondissement),
            )
        )
    towns.sort(key=lambda town: town.insee)
    return towns


class _WeightedTowns:
    """Towns drawn with a probability growing with their population to the given power."""

    def __init__(self, towns: Sequence[_Town], power: float) -> None:
        self.towns = towns
        self.cumulative = list(
            itertools.accumulate(max(town.population, 1) ** power for town in towns)
        )

    def draw(self, rng: random.Random) -> _Town:
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.towns[min(index, len(self.towns) - 1)]


def _jitter(rng: random.Random, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
    distance = radius_km * math.sqrt(rng.random())
    angle = rng.random() * math.tau
    dlat = distance * math.cos(angle) / 111.0
    dlon = distance * math.sin(angle) / (111.0 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _address(rng: random.Random, streets: Sequence[str] = _STREETS) -> str:
    """ "12 rue Victor-Hugo", "ZA des Prés, 14 rue de l'Industrie"."""
    zone, comma, street = rng.choice(streets).rpartition(", ")
    return f"{zone}{comma}{rng.randint(1, 120)} {street}"


# --- Agencies ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _AgencyPlan:
    slug: str
    name: str
    kind: str
    town: _Town
    sectors: tuple[str, ...]  # an employer's own sectors; empty for the others
    address: str


@dataclass(frozen=True, slots=True)
class _DemoAgency:
    id: int
    plan: _AgencyPlan
    lat: float
    lon: float


def _plan_agencies(towns: Sequence[_Town], rng: random.Random) -> list[_AgencyPlan]:
    """About forty agencies, each in the biggest town of a different department.

    The twelve biggest towns always have a France Travail agency; twenty-eight more towns are
    drawn (with the seed) among the next sixty-eight and get the other kinds.
    """
    # Paris, Lyon and Marseille count as whole cities, placed in their biggest arrondissement.
    city_population: dict[tuple[str, str], int] = {}
    for town in towns:
        key = (town.department, town.city)
        city_population[key] = city_population.get(key, 0) + town.population

    def size(town: _Town) -> tuple[int, int]:
        whole = city_population[(town.department, town.city)]
        return (whole if town.is_arrondissement else town.population), town.population

    biggest: dict[str, _Town] = {}
    for town in towns:
        best = biggest.get(town.department)
        if best is None or size(town) > size(best):
            biggest[town.department] = town
    ranked = []
    names: set[str] = set()
    # Saint-Denis is the biggest town of both Seine-Saint-Denis and La Réunion: one is enough
    # (agencies are named, and their slugs made, after their town).
    for town in sorted(biggest.values(), key=lambda t: (-size(t)[0], t.insee)):
        if town.city not in names:
            names.add(town.city)
            ranked.append(town)
    rest = ranked[12:80]
    big, others = ranked[:12], rng.sample(rest, min(28, len(rest)))
    kinds = (
        ["france_travail"] * 5
        + ["mission_locale"] * 8
        + ["cap_emploi"] * 5
        + ["apec"] * 4
        + ["employer"] * 6
    )
    rng.shuffle(kinds)
    del kinds[len(others) :]
    employers = list(_EMPLOYERS)
    plans: list[_AgencyPlan] = []
    for town, kind in [(t, "france_travail") for t in big] + list(zip(others, kinds, strict=True)):
        sectors: tuple[str, ...] = ()
        address = _address(rng)
        if kind == "france_travail":
            if town.city in _FT_SITES:
                name = f"France Travail {town.city} {rng.choice(_FT_SITES[town.city])}"
            else:
                name = f"France Travail {town.label}"
        elif kind == "mission_locale":
            name = f"Mission locale {_de_city(town.city)}"
        elif kind == "cap_emploi":
            name = f"Cap emploi {DEPARTMENTS.get(town.department, town.department)}"
        elif kind == "apec":
            name = f"Apec {town.city}"
        else:
            name, sectors = employers.pop(0)
            address = _address(rng, _ACTIVITY_STREETS)
        slug = _slug(name)
        if any(plan.slug == slug for plan in plans):
            slug = f"{slug}-{town.department.lower()}"
        plans.append(_AgencyPlan(slug, name, kind, town, sectors, address))
    return plans


def _create_agencies(db: Session, plans: Sequence[_AgencyPlan]) -> list[_DemoAgency]:
    """Create the planned agencies, reusing those a previous load already made."""
    existing = {
        agency.slug: agency
        for agency in db.scalars(select(Agency).where(Agency.slug.in_([p.slug for p in plans])))
    }
    result = []
    for plan in plans:
        agency = existing.get(plan.slug)
        if agency is None:
            agency, _token = create_agency(
                db,
                slug=plan.slug,
                name=plan.name,
                kind=plan.kind,
                city=plan.town.city,
                postal_code=plan.town.postal_code,
                lat=plan.town.lat,
                lon=plan.town.lon,
            )
            agency.address = plan.address
            agency.email = f"contact@{plan.slug}.example.org"
        result.append(
            _DemoAgency(agency.id, plan, agency.lat or plan.town.lat, agency.lon or plan.town.lon)
        )
    db.flush()
    return result


# --- Events ------------------------------------------------------------------------------------


class _Weighted(Generic[T]):
    """A fixed weighted choice, drawn with one random number."""

    def __init__(self, weights: Sequence[tuple[T, float]]) -> None:
        kept = [(key, weight) for key, weight in weights if weight > 0]
        self.keys = [key for key, _ in kept]
        self.cumulative = list(itertools.accumulate(weight for _, weight in kept))

    def draw(self, rng: random.Random) -> T:
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.keys[min(index, len(self.keys) - 1)]


class _Generator:
    """Draws events one at a time; keeps only small caches, never the rows it made."""

    def __init__(
        self,
        *,
        agencies: Sequence[_DemoAgency],
        towns: Sequence[_Town],
        events: int,
        seed: int,
        now: datetime,
    ) -> None:
        self.rng = random.Random(f"{seed}:events")
        self.people = random.Random(f"{seed}:people")
        self.agencies = agencies
        self.now = now
        self.large = events > LARGE
        self.full_share = min(0.07, MAX_FULL_EVENTS_LARGE / events) if self.large else 0.07
        self.full_left = MAX_FULL_EVENTS_LARGE if self.large else events
        self.agency_draw = _Weighted([(a, _KIND_WEIGHT[a.plan.kind]) for a in agencies])
        self.type_draws = {
            kind: _Weighted(list(weights.items())) for kind, weights in _KIND_TYPE_WEIGHTS.items()
        }
        self.sector_draw = _Weighted(list(_SECTOR_WEIGHTS.items()))
        self.apec_sector_draw = _Weighted(list(_APEC_SECTOR_WEIGHTS.items()))
        # Across France, small towns get their share (square root); around an agency, events
        # go where people live.
        self.national = _WeightedTowns(towns, 0.5)
        by_department: dict[str, list[_Town]] = {}
        for town in towns:
            by_department.setdefault(town.department, []).append(town)
        self.departments = {
            department: _WeightedTowns(members, 1.0)
            for department, members in by_department.items()
        }
        self.nearest: dict[tuple[str, bool], _DemoAgency] = {}
        self.descriptions: dict[tuple[str, int, str, str], str] = {}
        self.folded: dict[str, str] = {}
        today = now.astimezone(PARIS).date()
        self.days: list[date] = [today + timedelta(days=d) for d in range(HORIZON_DAYS)]
        self.instants: dict[tuple[str, int, int], datetime] = {}
        self.created = [now - timedelta(days=d, hours=h) for d in range(5, 31) for h in (3, 9)]

    # -- pieces

    def _nearest_agency(self, town: _Town, *, public: bool = False) -> _DemoAgency:
        key = (town.insee, public)
        found = self.nearest.get(key)
        if found is None:
            scale = math.cos(math.radians(town.lat)) ** 2
            found = min(
                (a for a in self.agencies if not public or a.plan.kind != "employer"),
                key=lambda a: (a.lat - town.lat) ** 2 + scale * (a.lon - town.lon) ** 2,
            )
            self.nearest[key] = found
        return found

    def _instant(self, zone: str, day: int, minute: int) -> datetime:
        key = (zone, day, minute)
        found = self.instants.get(key)
        if found is None:
            d = self.days[day]
            local = datetime(
                d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=ZoneInfo(zone)
            )
            found = self.instants[key] = local.astimezone(UTC)
        return found

    def _schedule(self, type_: str, zone: str) -> tuple[datetime, datetime]:
        rng = self.rng
        day = rng.randrange(HORIZON_DAYS)
        weekday = self.days[day].weekday()
        # Every draw is made whatever the date, so that the same seed gives the same events
        # (but for their dates) whenever it is loaded.
        if rng.random() < 0.85 and weekday >= 5:  # weekends mostly move to the Monday after
            day += 7 - weekday
            if day >= HORIZON_DAYS:
                day -= 7
        durations, weights = _DURATIONS.get(type_, _DEFAULT_DURATIONS)
        duration = rng.choices(durations, weights)[0]
        # Starts on the half hour from 9:00, and ends by 17:00.
        start_minute = 9 * 60 + 30 * rng.randrange((8 * 60 - duration) // 30 + 1)
        starts = self._instant(zone, day, start_minute)
        if starts <= self.now:  # today, already past: the same time a week later
            starts = self._instant(zone, day + 7, start_minute)
        return starts, starts + timedelta(minutes=duration)

    def _sectors(self, agency: _DemoAgency, type_: str) -> list[str]:
        rng = self.rng
        if agency.plan.sectors:
            own = agency.plan.sectors
            return sorted(rng.sample(own, rng.randint(1, len(own))))
        if rng.random() < _ALL_SECTORS_SHARE[type_]:
            return ["all"]
        draw = self.apec_sector_draw if agency.plan.kind == "apec" else self.sector_draw
        count = rng.choices((1, 2, 3), (6, 3, 1))[0]
        return sorted({draw.draw(rng) for _ in range(count)})

    def _title(self, agency: _DemoAgency, type_: str, sector: str, company: str) -> str:
        words = _SECTOR_WORDS[sector]
        templates = _TITLES[type_] + _KIND_TITLES.get((agency.plan.kind, type_), ())
        if words.metiers is None:
            templates = tuple(t for t in templates if "{metiers}" not in t)
        template = self.rng.choice(templates)
        return template.format(
            c=NBSP + ":",
            q=NBSP + "?",
            metiers=words.metiers,
            job=words.job,
            company=company,
        )

    def _fold(self, text_: str) -> str:
        found = self.folded.get(text_)
        if found is None:
            found = self.folded[text_] = search_key(text_)
        return found

    def _description(self, type_: str, sector: str, fmt: str) -> str:
        variant = self.rng.randrange(len(_DESCRIPTIONS[type_]))
        key = (type_, variant, sector, fmt)
        found = self.descriptions.get(key)
        if found is None:
            domaine = _SECTOR_WORDS[sector].domaine
            raw = _DESCRIPTIONS[type_][variant].format(domaine=domaine, de_domaine=_de(domaine))
            found = self.descriptions[key] = sanitise_html(_typeset(raw + _FORMAT_NOTES[fmt]))
        return found

    # -- one event

    def event(self, event_id: int, index: int) -> tuple[dict[str, Any], list[str], bool]:
        """The row of one event, its sectors, and whether it should be filled up."""
        rng = self.rng
        if self.large:
            town = self.national.draw(rng)
            agency = self._nearest_agency(town)
        else:
            agency = self.agency_draw.draw(rng)
            town = agency.plan.town
            if rng.random() < 0.35:
                town = self.departments[town.department].draw(rng)
        if index < _FORCED and agency.plan.kind == "employer":
            # The first events show every type and sector: not an employer's business.
            agency = self._nearest_agency(town, public=True)
            if not self.large:
                town = agency.plan.town
        type_ = self.type_draws[agency.plan.kind].draw(rng)
        if index < len(_TYPES):  # every type, sector and format shows up in any load
            type_ = _TYPES[index]
        sectors = self._sectors(agency, type_)
        if index < _FORCED:
            sectors = [_FORCED_SECTORS[index]]

        if type_ in _ONLINE_ONLY:
            fmt = "online"
        elif type_ in _ONSITE_ONLY:
            fmt = "onsite"
        else:
            fmt = rng.choices(_FORMATS, (72, 14, 14))[0]
        if 3 <= index < 6:
            fmt = _FORMATS[index - 3]

        zone = _OVERSEAS_ZONES.get(town.department, "Europe/Paris")
        starts, ends = self._schedule(type_, zone)
        if agency.plan.kind == "employer":
            company = agency.plan.name
        else:
            company = rng.choice(_COMPANIES[sectors[0]])
        title = self._title(agency, type_, sectors[0], company)
        title_key = self._fold(title)

        venue_name = venue_address = venue_postal_code = venue_city = None
        lat = lon = cell = None
        online_url = None
        if fmt != "online":
            if agency.plan.kind == "employer" and town == agency.plan.town:
                venue_name, venue_address = agency.plan.name, agency.plan.address
                lat, lon = _jitter(rng, town.lat, town.lon, 2.0)
            elif type_ == "company_visit" or company in title:  # at the company's own site
                venue_name, venue_address = company, _address(rng, _ACTIVITY_STREETS)
                lat, lon = _jitter(rng, town.lat, town.lon, 3.0)
            elif town == agency.plan.town and rng.random() < 0.4:
                venue_name, venue_address = agency.plan.name, agency.plan.address
                lat, lon = agency.lat, agency.lon
            else:
                venues = _BIG_VENUES if type_ == "forum" else _VENUES
                venue_name = rng.choice(venues)
                venue_address = _address(rng)
                lat, lon = _jitter(rng, town.lat, town.lon, 3.0)
            venue_postal_code, venue_city = town.postal_code, town.city
            cell = geo_cell(lat, lon)
            where = _a_city(town.city)
            title = f"{title} {where}"
            title_key = f"{title_key} {self._fold(where)}"
        if fmt != "onsite":
            online_url = f"https://visio.example.org/{_URL_STEMS[type_]}-{rng.getrandbits(48):012x}"

        empty_share, low, high = _CAPACITY[type_]
        capacity = None if rng.random() < empty_share else rng.randint(low, high)
        remote_capacity = rng.randint(2, 20) * 5 if fmt == "hybrid" else None
        offers_share, low, high = _JOB_OFFERS.get(type_, (0.05, 1, 10))
        job_offers = rng.randint(low, high) if rng.random() < offers_share else None
        notes = None
        if rng.random() < 0.35:
            notes = _typeset(
                _ONLINE_ACCESSIBILITY if fmt == "online" else rng.choice(_ACCESSIBILITY)
            )
        waitlist = rng.random() < 0.85

        created_at = rng.choice(self.created)
        updated_at = created_at
        status, message, revision = "scheduled", None, 1
        closed = False
        opens_at = closes_at = None
        window = rng.random()
        hours_ago, days_ahead = rng.randint(1, 72), rng.randint(1, 3)
        if index == 20 or (index > 21 and window < 0.03):
            status, message, revision = "cancelled", _typeset(rng.choice(_CANCELLATIONS)), 2
            updated_at = self.now - timedelta(hours=hours_ago)
        elif window < 0.06:
            closed = True
        elif window < 0.09:  # closed at a deadline already passed
            closes_at = self.now - timedelta(hours=hours_ago)
        elif window < 0.11 and starts - self.now > timedelta(days=5):  # not open yet
            opens_at = self.now + timedelta(days=days_ahead)
            closes_at = starts - timedelta(days=1)
        elif window < 0.5:
            closes_at = starts - timedelta(hours=(2, 24, 48)[days_ahead - 1])
            if window < 0.2 and closes_at > created_at:
                opens_at = created_at
        fill = (
            status != "cancelled"
            and (index == 21 or (index > 21 and rng.random() < self.full_share))
            and self.full_left > 0
        )
        self.full_left -= fill
        if fill and capacity is None:
            capacity = rng.randint(10, 25)
        if fill and capacity is not None and capacity > 25:
            capacity = rng.randint(10, 25)
        if fill and remote_capacity is not None and remote_capacity > 15:
            remote_capacity = rng.randint(5, 15)

        row: dict[str, Any] = {
            "id": event_id,
            "agency_id": agency.id,
            "title": title,
            "description_html": self._description(type_, sectors[0], fmt),
            "type": type_,
            "format": fmt,
            "starts_at": starts,
            "ends_at": ends,
            "timezone": zone,
            "venue_name": venue_name,
            "venue_address": venue_address,
            "venue_postal_code": venue_postal_code,
            "venue_city": venue_city,
            "venue_lat": lat,
            "venue_lon": lon,
            "geo_cell": cell,
            # = search_key(title, venue_name, venue_city), from folded pieces: folding works
            # character by character, and a cache of pieces stays small where one of whole
            # titles would not.
            "search_key": " ".join(
                [title_key]
                + ([self._fold(venue_name)] if venue_name else [])
                + ([self._fold(venue_city)] if venue_city else [])
            ),
            "online_url": online_url,
            "capacity": capacity,
            "remote_capacity": remote_capacity,
            "seats_taken": 0,
            "remote_seats_taken": 0,
            "waitlist": waitlist,
            "registration_opens_at": opens_at,
            "registration_closes_at": closes_at,
            "registration_closed": closed,
            "job_offers": job_offers,
            "accessibility_notes": notes,
            "status": status,
            "cancellation_message": message,
            "revision": revision,
            "created_at": created_at,
            "updated_at": updated_at,
        }
        return row, sectors, fill

    # -- registrations

    def registrations(self, row: dict[str, Any], fill: bool) -> list[dict[str, Any]]:
        """People signed up to an event; sets its seats_taken to match. Never oversells."""
        if row["status"] == "cancelled":
            return []
        rng = self.people
        start: datetime = row["created_at"]
        if row["registration_opens_at"] is not None:
            start = max(start, row["registration_opens_at"])
        end = self.now
        if row["registration_closes_at"] is not None:
            end = min(end, row["registration_closes_at"])
        if start >= end:
            return []
        capacity: int | None = row["capacity"]
        remote_capacity: int | None = row["remote_capacity"]
        hybrid = row["format"] == "hybrid"
        if fill and capacity is not None:
            onsite, remote = capacity, (remote_capacity or 0) if hybrid else 0
            waiting = rng.choice((0, 1, 2)) if row["waitlist"] else 0
        elif not self.large and rng.random() < 0.4:
            onsite = rng.randint(1, 6)
            if capacity is not None:
                onsite = min(onsite, capacity - 1)
            remote = rng.randint(0, 3) if hybrid else 0
            if remote_capacity is not None:
                remote = min(remote, remote_capacity - 1)
            waiting = 0
        else:
            return []
        total = onsite + remote + waiting
        if total <= 0:
            return []
        span = (end - start).total_seconds()
        times = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(total))
        # Remote places are what a hybrid event sells at a distance; an online event's only
        # capacity is `capacity`, and its people attend remotely.
        modes = ["onsite"] * onsite + ["remote"] * remote
        rng.shuffle(modes)
        default_mode = "remote" if row["format"] == "online" else "onsite"
        seen: set[str] = set()
        rows = []
        for position, created_at in enumerate(times):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            local = f"{_slug(first)}.{_slug(last)}".replace("-", "")
            email = f"{local}@example.org"
            suffix = 2
            while email in seen:
                email = f"{local}{suffix}@example.org"
                suffix += 1
            seen.add(email)
            confirmed = position < onsite + remote
            mode = modes[position] if confirmed and hybrid else default_mode
            phone = None
            if rng.random() < 0.6:
                digits = " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
                phone = f"0{rng.choice('67')} {digits}"
            rows.append(
                {
                    "event_id": row["id"],
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "phone": phone,
                    "attendance": mode,
                    "status": "confirmed" if confirmed else "waitlisted",
                    "waitlist_position": None if confirmed else position - onsite - remote + 1,
                    "token": secrets.token_urlsafe(24),
                    "consent_at": created_at,
                    "created_at": created_at,
                    "updated_at": created_at,
                }
            )
        if hybrid:
            row["seats_taken"], row["remote_seats_taken"] = onsite, remote
        else:
            row["seats_taken"] = onsite + remote
        return rows


# --- Entry point -------------------------------------------------------------------------------


def load_demo(
    db: Session,
    *,
    events: int = 300,
    seed: int = 2026,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create about forty agencies and `events` events over the eight weeks after `now`.

    Needs the communes table loaded (events_app.places.load_communes); raises RuntimeError
    otherwise, and ValueError for a naive `now` or a negative count. Agencies already made by
    an earlier load are reused and events are added to those already there. Writes in batches
    of BATCH_SIZE events and calls `progress` with the number of events written so far after
    each one. Never commits: the caller does, once, at the end.

    Up to LARGE events, each agency's events are around its own town, with a few hundred
    registrations; beyond, for benchmarks, venues are spread over all of France by
    population and only a few full events have registrations.
    """
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if events < 0:
        raise ValueError("events must not be negative")
    towns = _load_towns(db)
    if not towns:
        raise RuntimeError("the communes table is empty: run `events-app migrate` first")

    agencies = _create_agencies(db, _plan_agencies(towns, random.Random(f"{seed}:agencies")))
    generator = _Generator(agencies=agencies, towns=towns, events=events, seed=seed, now=now)

    # Ids are given explicitly so that a batch's sectors and registrations can name their
    # event without a RETURNING round trip; PostgreSQL's sequence is moved past them below.
    first_id = (db.scalar(select(func.max(Event.id))) or 0) + 1
    registrations = 0
    for batch_start in range(0, events, BATCH_SIZE):
        event_rows: list[dict[str, Any]] = []
        sector_rows: list[dict[str, Any]] = []
        registration_rows: list[dict[str, Any]] = []
        for index in range(batch_start, min(events, batch_start + BATCH_SIZE)):
            event_id = first_id + index
            row, sectors, fill = generator.event(event_id, index)
            registration_rows.extend(generator.registrations(row, fill))
            event_rows.append(row)
            sector_rows.extend({"event_id": event_id, "sector": code} for code in sectors)
        # render_nulls: every row then names the same columns and the batch goes out as one
        # executemany; otherwise the ORM splits it wherever a None falls (row by row here).
        db.execute(insert(Event).execution_options(render_nulls=True), event_rows)
        db.execute(insert(EventSector), sector_rows)
        if registration_rows:
            db.execute(insert(Registration).execution_options(render_nulls=True), registration_rows)
        registrations += len(registration_rows)
        if progress is not None:
            progress(batch_start + len(event_rows))

    if events and db.get_bind().dialect.name == "postgresql":
        db.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                "(SELECT max(id) FROM events))"
            )
        )
    return DemoSummary(agencies=len(agencies), events=events, registrations=registrations)
