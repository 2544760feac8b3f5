"""The words of the demonstration data and their French grammar: words by sector, companies,
streets, venues, names, titles and descriptions by event type, the weights of each draw, and
the small rules that join them ("à Lyon", "d'Angers", a non-breaking space before « : »).

Data and pure functions only: demo.py draws from them with a seeded random generator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from events_app.models import fold_text

NBSP: Final = "\u00a0"  # French typography: a non-breaking space before : ; ? ! %


@dataclass(frozen=True, slots=True)
class SectorWords:
    metiers: str | None  # "les métiers de la santé"; None for "all"
    domaine: str  # what a description says: "dans {domaine}"
    job: str  # plural job title for recruitment sessions


SECTOR_WORDS: Final[dict[str, SectorWords]] = {
    "A": SectorWords(
        "les métiers de l'agriculture et des espaces verts",
        "les métiers de l'agriculture et des espaces verts",
        "ouvriers agricoles et jardiniers paysagistes",
    ),
    "B": SectorWords("les métiers d'art", "les métiers d'art", "ébénistes et tapissiers"),
    "C": SectorWords(
        "les métiers de la banque et de l'assurance",
        "la banque, l'assurance et l'immobilier",
        "conseillers clientèle",
    ),
    "D": SectorWords(
        "les métiers du commerce et de la vente",
        "le commerce et la grande distribution",
        "employés de libre-service et vendeurs",
    ),
    "E": SectorWords(
        "les métiers du numérique et de la communication",
        "la communication et le numérique",
        "développeurs web et chargés de communication",
    ),
    "F": SectorWords(
        "les métiers du bâtiment et des travaux publics",
        "le bâtiment et les travaux publics",
        "maçons, électriciens et conducteurs d'engins",
    ),
    "G": SectorWords(
        "les métiers de l'hôtellerie-restauration",
        "l'hôtellerie, la restauration et le tourisme",
        "serveurs, cuisiniers et réceptionnistes",
    ),
    "H": SectorWords(
        "les métiers de l'industrie",
        "l'industrie",
        "opérateurs de production et soudeurs",
    ),
    "I": SectorWords(
        "les métiers de la maintenance",
        "l'installation et la maintenance",
        "techniciens de maintenance",
    ),
    "J": SectorWords("les métiers de la santé", "la santé", "aides-soignants et infirmiers"),
    "K": SectorWords(
        "les métiers des services à la personne",
        "les services à la personne",
        "auxiliaires de vie et agents d'entretien",
    ),
    "L": SectorWords("les métiers du spectacle", "le spectacle vivant", "techniciens du spectacle"),
    "M": SectorWords(
        "les métiers de la gestion et de l'administration",
        "les fonctions support de l'entreprise",
        "assistants administratifs et comptables",
    ),
    "N": SectorWords(
        "les métiers du transport et de la logistique",
        "le transport et la logistique",
        "préparateurs de commandes et conducteurs routiers",
    ),
    "all": SectorWords(None, "tous les secteurs d'activité", "agents polyvalents"),
}

# Made-up companies (no real brand), one or two per sector, for company visits; none of
# them is one of the employer agencies below, whose events are in their own town.
COMPANIES: Final[dict[str, tuple[str, ...]]] = {
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
EMPLOYERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("Transports Vermeil", ("N",)),
    ("Clinique des Tilleuls", ("J", "K")),
    ("Forges de la Vallée", ("H", "I")),
    ("Hôtel du Grand Cèdre", ("G",)),
    ("Bâtiments Carrel et Fils", ("F",)),
    ("Halles du Marché Neuf", ("D", "N")),
)

# France Travail agencies in big cities are named after their neighbourhood.
FT_SITES: Final[dict[str, tuple[str, ...]]] = {
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

STREETS: Final[tuple[str, ...]] = (
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
ACTIVITY_STREETS: Final[tuple[str, ...]] = (
    "ZA des Prés, rue de l'Industrie",
    "ZI Nord, avenue de l'Europe",
    "parc d'activités des Landes, allée Gutenberg",
    "ZAC du Grand Champ, rue Denis-Papin",
)
VENUES: Final[tuple[str, ...]] = (
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
BIG_VENUES: Final[tuple[str, ...]] = (
    "Parc des expositions",
    "Centre des congrès",
    "Halle aux grains",
)

ACCESSIBILITY: Final[tuple[str, ...]] = (
    "Salle accessible en fauteuil roulant, boucle magnétique à l'accueil.",
    "Accès de plain-pied ; places de stationnement réservées devant le bâtiment.",
    "Interprète en langue des signes française (LSF) sur demande, au moins 5 jours avant.",
    "Ascenseur jusqu'à la salle ; documents disponibles en gros caractères.",
)
ONLINE_ACCESSIBILITY: Final = (
    "Sous-titrage en direct ; plateforme compatible avec les lecteurs d'écran."
)
CANCELLATIONS: Final[tuple[str, ...]] = (
    "Événement annulé faute d'un nombre suffisant d'entreprises participantes.",
    "L'entreprise a suspendu ses recrutements : cet événement est annulé. Une nouvelle date "
    "vous sera proposée.",
    "Annulé en raison d'une alerte météo. Les personnes inscrites sont prévenues par courriel.",
    "La salle n'est plus disponible à cette date : l'événement est annulé.",
)

FIRST_NAMES: Final[tuple[str, ...]] = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Emma", "Jade", "Zoé", "Anaïs",
    "Élodie", "Fatoumata", "Aïcha", "Nathalie", "Sandrine", "Hélène", "Océane", "Maëlle",
    "Thomas", "Lucas", "Hugo", "Nicolas", "Karim", "Mehdi", "Julien", "Maxime", "Théo",
    "Mamadou", "Kévin", "Jérôme", "François", "Stéphane", "Loïc", "Rémi", "Noé", "Yanis",
    "Benoît", "Grégory", "Sébastien", "Anthony",
)  # fmt: skip
LAST_NAMES: Final[tuple[str, ...]] = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Benali", "Diallo", "Nguyen", "Traoré", "Haddad",
    "Da Silva", "Le Gall", "Kerbrat", "Rousseau", "Faure", "Chevalier", "Gauthier", "Texier",
)  # fmt: skip

# Title templates per type. {metiers} and {company} are filled from the sector; templates
# naming {metiers} are skipped for "all" sectors.
TITLES: Final[dict[str, tuple[str, ...]]] = {
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
KIND_TITLES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("cap_emploi", "forum"): ("Forum emploi et handicap",),
    ("cap_emploi", "workshop"): ("Atelier{c} parler de son handicap en entretien",),
    ("cap_emploi", "info_session"): ("Réunion d'information{c} la RQTH et l'emploi",),
    ("mission_locale", "workshop"): ("Atelier jeunes{c} premier emploi, premiers pas",),
    ("mission_locale", "info_session"): ("Réunion d'information{c} le Contrat d'engagement jeune",),
    ("apec", "workshop"): ("Atelier cadres{c} définir son projet professionnel",),
    ("apec", "conference"): ("Conférence cadres{c} négocier sa rémunération",),
    ("apec", "online_fair"): ("Salon en ligne des cadres et des jeunes diplômés",),
}

DESCRIPTIONS: Final[dict[str, tuple[str, ...]]] = {
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
FORMAT_NOTES: Final[dict[str, str]] = {
    "onsite": "",
    "online": "<p>Le lien de connexion vous est envoyé avec la confirmation d'inscription.</p>",
    "hybrid": "<p>Participez sur place ou à distance : vous choisissez en vous inscrivant.</p>",
}

KIND_TYPE_WEIGHTS: Final[dict[str, dict[str, float]]] = {
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
KIND_WEIGHT: Final[dict[str, float]] = {
    "france_travail": 3,
    "mission_locale": 2,
    "cap_emploi": 1,
    "apec": 1.5,
    "employer": 1,
}
# Share of events open to every sector, by type.
ALL_SECTORS_SHARE: Final[dict[str, float]] = {
    "job_dating": 0.15, "forum": 0.5, "online_fair": 0.4, "info_session": 0.3,
    "workshop": 0.6, "conference": 0.4, "company_visit": 0.0, "open_day": 0.2,
    "recruitment": 0.05, "other": 0.5,
}  # fmt: skip
SECTOR_WEIGHTS: Final[dict[str, float]] = {
    "A": 2, "B": 0.5, "C": 1.5, "D": 3, "E": 1.5, "F": 3, "G": 3, "H": 3, "I": 2, "J": 3,
    "K": 3, "L": 0.5, "M": 2, "N": 3,
}  # fmt: skip
APEC_SECTOR_WEIGHTS: Final[dict[str, float]] = {
    "C": 3, "E": 3, "H": 2, "I": 1, "J": 1, "M": 4, "N": 1,
}  # fmt: skip
# (share without limit, smallest, largest) capacity by type.
CAPACITY: Final[dict[str, tuple[float, int, int]]] = {
    "job_dating": (0.1, 20, 60), "forum": (0.5, 100, 200), "online_fair": (0.5, 100, 200),
    "info_session": (0.15, 12, 40), "workshop": (0.05, 10, 16), "conference": (0.3, 40, 150),
    "company_visit": (0.0, 10, 20), "open_day": (0.6, 30, 80), "recruitment": (0.05, 10, 30),
    "other": (0.3, 15, 50),
}  # fmt: skip
# (share with a count, smallest, largest) job offers by type.
JOB_OFFERS: Final[dict[str, tuple[float, int, int]]] = {
    "job_dating": (0.8, 5, 40), "forum": (0.7, 50, 300), "online_fair": (0.8, 30, 250),
    "recruitment": (0.9, 3, 20), "company_visit": (0.4, 2, 10), "open_day": (0.3, 2, 15),
}  # fmt: skip
# (durations in minutes, their weights) by type.
DURATIONS: Final[dict[str, tuple[tuple[int, ...], tuple[float, ...]]]] = {
    "forum": ((180, 210, 240), (1, 1, 2)),
    "online_fair": ((180, 240), (1, 1)),
    "workshop": ((90, 120, 180), (1, 2, 1)),
    "job_dating": ((120, 180), (2, 1)),
    "open_day": ((180, 240), (1, 1)),
}
DEFAULT_DURATIONS: Final = ((60, 90, 120, 150), (2, 3, 3, 1))
ONLINE_ONLY: Final = frozenset({"online_fair"})
ONSITE_ONLY: Final = frozenset({"company_visit", "open_day"})
URL_STEMS: Final[dict[str, str]] = {
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


# --- French grammar ----------------------------------------------------------------------------

_VOWELS: Final = frozenset("aeiouyàâäéèêëîïôöùûüœAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŒ")


def a_city(city: str) -> str:
    """ "à Lyon", "au Havre", "aux Mureaux", "à La Rochelle"."""
    if city.startswith("Le "):
        return "au " + city[3:]
    if city.startswith("Les "):
        return "aux " + city[4:]
    return "à " + city


def de_city(city: str) -> str:
    """ "de Lyon", "d'Angers", "du Havre", "des Mureaux"."""
    if city.startswith("Le "):
        return "du " + city[3:]
    if city.startswith("Les "):
        return "des " + city[4:]
    if city[0] in _VOWELS:
        return "d'" + city
    return "de " + city


def de(phrase: str) -> str:
    """ "des métiers", "du bâtiment", "de la santé", "de l'industrie"."""
    if phrase.startswith("les "):
        return "des " + phrase[4:]
    if phrase.startswith("le "):
        return "du " + phrase[3:]
    return "de " + phrase


_TIGHT_PUNCTUATION: Final = re.compile(r" ([:;?!%»])")


def typeset(text_: str) -> str:
    """French typography: a non-breaking space before : ; ? ! % and »."""
    return _TIGHT_PUNCTUATION.sub(NBSP + r"\1", text_)


def slugify(text_: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold_text(text_)).strip("-")
