"""Every table of every component, for Alembic's metadata."""

from storage import models, models_leases, models_sla
from storage.models import Base

metadata = Base.metadata
__all__ = ["metadata", "models", "models_leases", "models_sla"]
