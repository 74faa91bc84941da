{#- The values of a seed column, read at run time (so an edited seed changes the SQL that
    pivots on it). Empty while dbt only parses. -#}
{% macro seed_column_values(seed_name, column, order_by) %}
    {% if not execute %}{{ return([]) }}{% endif %}
    {% set query %}select {{ column }} from {{ ref(seed_name) }} order by {{ order_by }}{% endset %}
    {{ return(run_query(query).columns[0].values()) }}
{% endmacro %}
