"""dbt: run the project in dbt/ against the warehouse, with the run's as-of date."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kam.constants import MARTS_BUILD_SCHEMA
from kam.processes import run_streaming
from kam.settings import Settings

AS_OF_DATE_VARIABLE = "KAM_AS_OF_DATE"  # read by the as_of_date() macro


@dataclass
class DbtResult:
    returncode: int
    counts: Counter = field(default_factory=Counter)  # (resource_type, status) -> n
    failures: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    invocation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> str:
        built = sum(
            n
            for (kind, status), n in self.counts.items()
            if kind in ("model", "seed", "snapshot") and status == "success"
        )
        tests = sum(n for (kind, status), n in self.counts.items() if kind == "test" and status == "pass")
        failed = sum(n for (_, status), n in self.counts.items() if status in ("error", "fail"))
        return f"{built} models/seeds built, {tests} tests passed, {failed} failed"


def dbt_env(
    url: str, settings: Settings, marts_schema: str = MARTS_BUILD_SCHEMA, target_dir: Path | None = None
) -> dict[str, str]:
    """The environment dbt's profile reads (dbt/profiles.yml). The password goes in a
    DBT_ENV_SECRET_ variable, which dbt scrubs from its logs. `marts_schema` is where the
    marts' nodes point: the build schema for a build, the published one for the docs."""
    parts = urlsplit(url)
    env = dict(os.environ)
    env.update(
        {
            "KAM_DB_HOST": parts.hostname or "127.0.0.1",
            "KAM_DB_PORT": str(parts.port or 5432),
            "KAM_DB_USER": unquote(parts.username or ""),
            "DBT_ENV_SECRET_KAM_DB_PASSWORD": unquote(parts.password or ""),
            "KAM_DB_NAME": parts.path.lstrip("/") or "postgres",
            "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
            "DBT_PROJECT_DIR": str(settings.dbt_project_dir),
            "DBT_TARGET_PATH": str(target_dir or settings.dbt_target_dir),
            "DBT_LOG_PATH": str(settings.logs_dir / "dbt"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_PARTIAL_PARSE": "true",
            "DBT_USE_COLORS": "false",
            "KAM_MARTS_BUILD_SCHEMA": marts_schema,
        }
    )
    return env


def read_run_results(target: Path) -> DbtResult:
    """The outcome of the last dbt command (returncode 0 here; the caller knows the real one)."""
    path = target / "run_results.json"
    outcome = DbtResult(returncode=0)
    if not path.exists():
        return outcome
    document = json.loads(path.read_text())
    outcome.invocation_id = document["metadata"].get("invocation_id")
    counts, failures, timings = outcome.counts, outcome.failures, outcome.timings
    for result in document["results"]:
        kind = result["unique_id"].split(".", 1)[0]
        counts[(kind, result["status"])] += 1
        timings[result["unique_id"]] = result.get("execution_time") or 0.0
        if result["status"] in ("error", "fail"):
            failures.append(f"{result['unique_id']}: {(result.get('message') or '').strip()}")
    return outcome


def run_dbt(
    args: list[str],
    url: str,
    settings: Settings,
    as_of_date: date | None = None,
    progress: Callable[[str], None] = print,
    marts_schema: str = MARTS_BUILD_SCHEMA,
    target_dir: Path | None = None,
) -> DbtResult:
    """Run a dbt command, streaming its output through `progress`."""
    dbt = Path(sys.executable).parent / "dbt"
    target = target_dir or settings.dbt_target_dir
    env = dbt_env(url, settings, marts_schema, target)
    if as_of_date is not None:
        env[AS_OF_DATE_VARIABLE] = as_of_date.isoformat()
    target.mkdir(parents=True, exist_ok=True)
    returncode = run_streaming(
        [str(dbt), *args], env, lambda line: progress(line.rstrip()), cwd=settings.dbt_project_dir
    )
    outcome = read_run_results(target)
    outcome.returncode = returncode
    return outcome
