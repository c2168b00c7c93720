"""Every table of every component, for Alembic's metadata."""

from storage import models
from storage.models import Base

try:  # the SLA component adds its own tables
    from storage import models_sla  # noqa: F401
except ImportError:  # pragma: no cover - before the SLA component exists
    pass

metadata = Base.metadata
__all__ = ["metadata", "models"]
