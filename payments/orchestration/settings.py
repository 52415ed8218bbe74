"""The settings a task reads, with personal data masked in whatever logs it writes."""

from __future__ import annotations

from payments.config import Settings, load_settings
from payments.logs import install_masking


def task_settings() -> Settings:
    """Settings for a task, once Airflow set its log handlers up: mask through them too."""
    install_masking()
    return load_settings()
