{#- The columns identify a row: together never null and never repeated. On an append-only
    history table (one set of rows per run), `this_run_only` checks the rows this run added:
    each run's rows were checked by that run, and keys of different runs never collide. -#}
{% test primary_key(model, columns, this_run_only=false) %}

select
    {{ columns | join(', ') }},
    count(*) as rows_with_this_key
from {{ model }}
{%- if this_run_only %}
where as_of_date = {{ as_of_date() }} and dbt_invocation_id = '{{ invocation_id }}'
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
    {%- for column in columns %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
