"""PEC (posta elettronica certificata): recognition, S/MIME verification, daticert, unwrapping."""

from daemon.pec.analyse import PecTrust, analyse_pec
from daemon.pec.model import RECEIPT_TYPES, Daticert, PecAnalysis

__all__ = ["RECEIPT_TYPES", "Daticert", "PecAnalysis", "PecTrust", "analyse_pec"]
