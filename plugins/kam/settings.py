"""Where the tool keeps its state and how it finds the project: one place for both.

Everything the tool writes lives under KAM_HOME (default ./var), so two KAM_HOMEs are two
independent instances.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    home: Path
    project_dir: Path
    warehouse_url: str | None
    warehouse_port: int | None

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def report_dir(self) -> Path:
        return self.home / "report"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt" / "target"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt"

    @property
    def dags_dir(self) -> Path:
        return self.project_dir / "dags"

    @property
    def expectations_dir(self) -> Path:
        return self.project_dir / "expectations"


def load_settings() -> Settings:
    """Read the environment. KAM_HOME is made absolute so subprocesses agree on it."""
    home = Path(os.environ.get("KAM_HOME") or "var").expanduser().resolve()
    port = os.environ.get("KAM_WAREHOUSE_PORT")
    return Settings(
        home=home,
        project_dir=Path(os.environ.get("KAM_PROJECT_DIR") or PROJECT_DIR).resolve(),
        warehouse_url=os.environ.get("KAM_WAREHOUSE_URL") or None,
        warehouse_port=int(port) if port else None,
    )
