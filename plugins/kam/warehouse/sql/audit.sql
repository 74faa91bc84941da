-- The audit schema: what was loaded, what was refused, what was checked, what was sent.
-- Idempotent: run on every bootstrap.
create schema if not exists audit;
create schema if not exists snapshots;

create table if not exists audit.batches (
    batch_id          bigint generated always as identity primary key,
    batch_key         text        not null,  -- mapping (or 'contract') + file path
    file_path         text        not null,
    file_name         text        not null,
    mapping           text        not null,
    target_tables     text[]      not null,
    checksum          text        not null,
    file_bytes        bigint,
    status            text        not null check (status in ('loading', 'loaded', 'failed', 'superseded', 'rejected')),
    rows_landed       bigint,
    rows_loaded       bigint,
    rows_quarantined  bigint,
    message           text,
    started_at        timestamptz not null default now(),
    finished_at       timestamptz,
    constraint rows_add_up check (rows_landed is null or rows_landed = rows_loaded + rows_quarantined)
);
create index if not exists batches_key_idx on audit.batches (batch_key, status);
create index if not exists batches_checksum_idx on audit.batches (checksum, mapping);

create table if not exists audit.batch_tables (
    batch_id          bigint not null references audit.batches on delete cascade,
    table_name        text   not null,
    rows_produced     bigint not null,
    rows_loaded       bigint not null,
    rows_merged       bigint not null,  -- identical rows collapsed (a derived entity such as a customer)
    rows_quarantined  bigint not null,
    primary key (batch_id, table_name),
    constraint rows_add_up check (rows_produced = rows_loaded + rows_merged + rows_quarantined)
);

-- A row that a file loaded over a row another file's batch held: when the file is replaced
-- and no longer has it, the row goes back to that batch instead of being deleted (a file
-- replaces only rows no other current file holds).
create table if not exists audit.shared_rows (
    table_name       text   not null,
    row_key          text   not null,
    batch_id         bigint not null,  -- the batch that loaded the row over
    holder_batch_id  bigint not null,  -- the batch that held it
    primary key (batch_id, table_name, row_key, holder_batch_id)
);

create table if not exists audit.quarantine (
    quarantine_id     bigint generated always as identity primary key,
    batch_id          bigint not null references audit.batches on delete cascade,
    file_name         text   not null,
    line_no           bigint not null,
    table_name        text   not null,
    column_name       text,
    value             text,
    reason            text   not null,
    record            jsonb  not null,
    quarantined_at    timestamptz not null default now()
);
create index if not exists quarantine_batch_idx on audit.quarantine (batch_id);

create table if not exists audit.publications (
    publication_id    bigint generated always as identity primary key,
    as_of_date        date        not null,
    run_id            text        not null,
    dbt_invocation_id text,
    published_at      timestamptz not null default now()
);
-- A backfill (an as-of date older than the current marts) publishes its history only.
alter table audit.publications add column if not exists is_current_marts boolean not null default true;
-- A publication made by mistake (a wrong date) is withdrawn, never deleted: who, when, why.
alter table audit.publications add column if not exists withdrawn_at timestamptz;
alter table audit.publications add column if not exists withdrawn_by text;
alter table audit.publications add column if not exists withdrawal_reason text;
-- Marts look up whether a day's run of history was published, once per customer.
create index if not exists publications_day on audit.publications (as_of_date, dbt_invocation_id);

-- One row per message the alert DAG means to send: a retry or rerun for the same as-of
-- date and recipient never sends it twice; a failed send is retried and recorded.
create table if not exists audit.alert_ledger (
    message_key       text primary key,  -- alert type / as-of date / recipient
    alert_type        text        not null,
    as_of_date        date        not null,
    recipients        text        not null,
    subject           text        not null,
    message_id        text        not null,
    status            text        not null check (status in ('pending', 'sent', 'failed')),
    attempts          integer     not null default 0,
    last_error        text,
    first_attempt_at  timestamptz not null default now(),
    sent_at           timestamptz
);

-- One row per expectation run by a quality gate (raw or marts).
create table if not exists audit.validation_results (
    validation_result_id bigint generated always as identity primary key,
    run_id            text        not null,
    gate              text        not null check (gate in ('raw', 'marts')),
    as_of_date        date        not null,
    suite             text        not null,
    table_name        text        not null,
    expectation_type  text        not null,
    column_name       text,
    kwargs            jsonb       not null,
    success           boolean     not null,
    observed_value    text,
    unexpected_count  bigint,
    unexpected_sample text,
    batch_ids         bigint[],   -- the raw batches validated (raw gate)
    dbt_invocation_id text,       -- the dbt build validated (marts gate)
    validated_at      timestamptz not null default now()
);
create index if not exists validation_results_suite_idx on audit.validation_results (suite, validated_at);

-- Who is building the marts. The build schema is shared, so dbt build, the marts gate and
-- publish of one run must not interleave with another run's; a lease that is not released
-- (a crashed worker) expires.
create table if not exists audit.transform_lease (
    lease_name        text primary key,
    run_id            text        not null,
    as_of_date        date        not null,
    acquired_at       timestamptz not null default now(),
    expires_at        timestamptz not null
);

-- Who holds it, to tell a dead holder from a slow one: the host and process of its latest
-- step, and when a step of it last began or ended.
alter table audit.transform_lease add column if not exists holder_host text;
alter table audit.transform_lease add column if not exists holder_pid integer;
alter table audit.transform_lease add column if not exists touched_at timestamptz not null default now();

-- Database sources (mappings with `kind: database`): how far each raw table has been
-- extracted, and every row removed from raw because the source deleted it.
alter table audit.batches add column if not exists rows_deleted bigint not null default 0;

create table if not exists audit.source_watermarks (
    source_name       text        not null,  -- the database mapping
    table_name        text        not null,
    watermark         timestamp,             -- the highest modification time extracted so far
    last_batch_id     bigint,
    rows_extracted    bigint      not null default 0,
    extracted_at      timestamptz not null default now(),
    reconciled_as_of  date,                  -- the as-of date of the last key reconciliation
    primary key (source_name, table_name)
);
alter table audit.source_watermarks add column if not exists full_extracted_as_of date;  -- the last whole extract

-- What each row a database mapping loaded looked like (a hash of what the source returned): a
-- row read again unchanged, as the look-back and full extracts read rows, is not loaded again.
create table if not exists audit.source_rows (
    source_name  text not null,
    table_name   text not null,
    row_key      text not null,
    row_hash     text not null,
    primary key (source_name, table_name, row_key)
);

create table if not exists audit.source_deletions (
    deletion_id       bigint generated always as identity primary key,
    batch_id          bigint      not null references audit.batches on delete cascade,
    source_name       text        not null,
    table_name        text        not null,
    reason            text        not null check (reason in ('soft_deleted', 'missing_from_source')),
    record            jsonb       not null,  -- the raw row as it was before it was removed
    deleted_at        timestamptz not null default now()
);
create index if not exists source_deletions_batch_idx on audit.source_deletions (batch_id);

-- The raw gate checks the values of each batch once: the run whose gate passed them.
alter table audit.batches add column if not exists raw_gate_run_id text;

-- What the mail server said to each recipient of each message: a recipient it refused
-- (5xx) did not get the message, whatever the message's own status says.
create table if not exists audit.alert_recipients (
    message_key       text        not null references audit.alert_ledger on delete cascade,
    recipient         text        not null,
    accepted          boolean     not null,
    smtp_code         integer,
    smtp_reply        text,
    recorded_at       timestamptz not null default now(),
    primary key (message_key, recipient)
);
