{#- A mart reading its own earlier runs (previous tier, previous grade) from a history table
    in `snapshots`, by relation instead of ref, so there is no dbt cycle (a model using these
    needs `-- depends_on: {{ ref('stg_audit__publications') }}`). Only published runs count:
    publish keeps, of each day, the published run's rows only, so a row counts when a
    publication names its day and run. Each read goes through the history's indexes and reads
    a few rows per customer or per day, however many days the history holds. Before the
    first run the table does not exist: no rows, with `columns` (name: type); a column the
    table does not have yet (rows written before it was kept) reads as null. -#}

{% macro published_row(identifier, columns, customer, where='true', earliest=false) -%}
{#- The latest (or earliest) published row of `customer` before the as-of date that matches
    `where` (on `history`): use as `inner join lateral (...) as alias on true`. -#}
    {%- call _from_history(identifier, columns) %}
    where
        history.customer_id = {{ customer }}
        and history.as_of_date < {{ as_of_date() }}
        and ({{ where }})
        and {{ _is_published() }}
    order by history.as_of_date {{ "asc" if earliest else "desc" }}
    limit 1
    {%- endcall %}
{%- endmacro %}

{% macro published_streak_start(identifier, customer, broken_by) -%}
{#- The first published day (as_of_date) of `customer`'s streak that runs up to the as-of
    date: the first day after the latest one that matches `broken_by` (on `history`). -#}
    select began.as_of_date
    from (select) as streak
    left join lateral (
        {{ published_row(identifier, {'as_of_date': 'date'}, customer, where=broken_by) }}
    ) as broken on true
    inner join lateral (
        {{ published_row(identifier, {'as_of_date': 'date'}, customer,
            where="history.as_of_date > coalesce(broken.as_of_date, date '0001-01-01')", earliest=true) }}
    ) as began on true
{%- endmacro %}

{% macro published_days(identifier, columns, days) -%}
{#- Every row of the published runs of the days that match `days` (on `as_of_date`). -#}
    {%- call _from_history(identifier, columns) %}
    where {{ _is_published(days) }}
    {%- endcall %}
{%- endmacro %}

{% macro _is_published(days='true') -%}
{#- PostgreSQL plans this as a semi-join either way round: from each customer's rows through
    (customer_id, as_of_date), or from the few matching publications through
    (as_of_date, dbt_invocation_id). `days` reads the publication's `as_of_date`. -#}
    exists (
        select 1
        from {{ ref('stg_audit__publications') }} as publications
        where
            publications.as_of_date = history.as_of_date
            and publications.dbt_invocation_id = history.dbt_invocation_id
            and ({{ days }})
    )
{%- endmacro %}

{% macro _from_history(identifier, columns) -%}
    {%- set relation = _history_relation(identifier) -%}
    {%- if relation is none -%}
    {{ _no_rows(columns) }}
    {%- else -%}
    select {{ _history_columns(relation, columns) }}
    from {{ relation }} as history
    {{- caller() }}
    {%- endif %}
{%- endmacro %}

{% macro _history_relation(identifier) -%}
    {{ return(adapter.get_relation(database=target.database, schema=history_schema(), identifier=identifier) if execute else none) }}
{%- endmacro %}

{% macro _history_columns(relation, columns) -%}
    {%- set present = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {%- for name, type in columns.items() -%}
    {{ "history." ~ name if name in present else "cast(null as " ~ type ~ ")" }} as {{ name }}{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro _no_rows(columns) -%}
    select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %}
    where false
{%- endmacro %}
