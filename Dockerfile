# The KAM image: the project, its pinned dependencies and Airflow 3, for docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 KAM_PROJECT_DIR=/opt/kam KAM_HOME=/opt/kam/var
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 50000 airflow
WORKDIR /opt/kam
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY plugins plugins
COPY tools tools
RUN pip install -c requirements/constraints.txt -e .
COPY . .
RUN mkdir -p /opt/kam/var && chown -R airflow /opt/kam/var
USER airflow
