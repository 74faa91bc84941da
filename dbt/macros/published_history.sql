{#- The rows of a history table that belong to published runs: the latest publication of
    each as-of date. A run that failed its gates never shows, and a rerun replaces a day.

    Published views use this over `audit.publications` itself, not over a staging view:
    dbt replaces a view by dropping the old one with CASCADE, which would take every
    published view built on it along. Views in `marts` may depend only on tables dbt never
    drops (the `snapshots` history and `audit`). -#}
{% macro published_history(history, publications=none) %}
{#- the run id is the history's bookkeeping, not a fact BI reads: every column but it -#}
{%- set columns = adapter.get_columns_in_relation(history) | rejectattr('name', 'equalto', 'dbt_invocation_id') | list if execute else [] %}
with

publications as (

    select distinct on (as_of_date)
        as_of_date,
        dbt_invocation_id
    from {{ publications or source('audit', 'publications') }}
    order by as_of_date, publication_id desc

),

final as (

    select
        {%- for column in columns %}
        history.{{ adapter.quote(column.name) }}{{ "," if not loop.last }}
        {%- else %}
        history.*
        {%- endfor %}
    from {{ history }} as history
    inner join publications
        on history.as_of_date = publications.as_of_date
        and history.dbt_invocation_id = publications.dbt_invocation_id

)

select * from final
{% endmacro %}
