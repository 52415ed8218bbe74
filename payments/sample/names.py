"""French names as funds hold them: accents, diaereses, ligatures, apostrophes, hyphens.

The lists are short on purpose; what matters is that every character class a
payment file must transliterate (é è ê ë à â ç ï î ô ö ù û ü ÿ œ æ ' -) occurs.
"""

FEMALE_FIRST_NAMES: tuple[str, ...] = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Valérie",
    "Christine", "Sandrine", "Céline", "Stéphanie", "Aurélie", "Émilie", "Julie",
    "Camille", "Léa", "Chloé", "Manon", "Inès", "Zoé", "Anaïs", "Maëlle", "Gaëlle",
    "Hélène", "Agnès", "Bérénice", "Noémie", "Océane", "Aïcha", "Fatoumata",
    "Marie-Thérèse", "Anne-Sophie", "Clémence", "Éloïse", "Maïwenn", "Laëtitia",
    "Joëlle", "Noëlle", "Capucine", "Rosalie", "Yasmine", "Nadège", "Mélanie",
)
MALE_FIRST_NAMES: tuple[str, ...] = (
    "Jean", "Pierre", "Michel", "Philippe", "Alain", "Nicolas", "Christophe", "Stéphane",
    "Sébastien", "Frédéric", "Laurent", "Julien", "Jérôme", "François", "Thomas",
    "Lucas", "Hugo", "Théo", "Noé", "Loïc", "Gaël", "Joël", "Noël", "Benoît", "Jérémy",
    "Mamadou", "Mohamed", "Karim", "Jean-Baptiste", "Jean-Loïc", "Hervé", "Rémi",
    "Éric", "Gérard", "Cédric", "Aurélien", "Mathéo", "Raphaël", "Anaël", "Yannick",
)
LAST_NAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
    "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier",
    "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand", "Garnier",
    "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas",
    "Perrin", "Morin", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine",
    "Chevalier", "Robin", "N'Diaye", "D'Angelo", "Le Gall", "Le Goff", "Le Bihan",
    "Saint-Martin", "Lœuillet", "Cœurdevey", "Bœuf", "Hervé", "Lefebvre", "Müller",
    "Böhm", "Ibáñez", "Da Silva", "Dos Santos", "Pérez", "Nguyễn", "Traoré", "Diallo",
    "Ben Saïd", "Ould-Ahmed", "Descharmes", "Château", "Bénard", "Grégoire", "Jourdain",
    "Lemaître", "Besançon", "Faÿ", "Lefèbvre-Dumas", "O'Neill", "Prud'homme",
)
#: INSEE codes (after the 99 prefix) of the countries of birth used for people born abroad.
COUNTRY_CODES: tuple[int, ...] = (350, 352, 351, 109, 134, 139, 127, 131, 341, 335, 243, 330)
