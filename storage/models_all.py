"""Every table of every component, for Alembic's metadata."""

import contextlib

from storage import models
from storage.models import Base

with contextlib.suppress(ImportError):  # the SLA component adds its own tables
    from storage import models_sla  # noqa: F401

metadata = Base.metadata
__all__ = ["metadata", "models"]
