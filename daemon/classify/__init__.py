"""Classification of a message by what its subject (then body) says, driven by routing_rules/ vocabularies."""

from daemon.classify.classifier import Classification, Evidence, classify, find_ticket_ids
from daemon.classify.codes import find_codes, find_matricola, valid_codice_fiscale, valid_partita_iva
from daemon.classify.vocabulary import Entry, Vocabularies, VocabularyError, load_vocabularies

__all__ = [
    "Classification",
    "Entry",
    "Evidence",
    "Vocabularies",
    "VocabularyError",
    "classify",
    "find_codes",
    "find_matricola",
    "find_ticket_ids",
    "load_vocabularies",
    "valid_codice_fiscale",
    "valid_partita_iva",
]
