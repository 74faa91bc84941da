{#- The published rows of a history table in `snapshots`, read by relation instead of ref
    (a model using it needs `-- depends_on: {{ ref('stg_audit__publications') }}`):
    a mart may read its own earlier runs (previous tier, previous grade) without a dbt
    cycle. Before the first run the table does not exist: an empty set with `columns`. -#}
{% macro published_history_rows(identifier, columns) %}
    {%- set relation = adapter.get_relation(database=target.database, schema='snapshots', identifier=identifier)
        if execute else none -%}
    {%- if relation is not none %}
    select {{ columns.keys() | join(', ') }} from ({{ published_history(relation, ref('stg_audit__publications')) }}) as published
    {%- else %}
    select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %}
    where false
    {%- endif %}
{% endmacro %}
