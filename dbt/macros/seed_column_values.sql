{#- The values of a seed column, read at run time (so an edited seed changes the SQL that
    pivots on it). Empty while dbt only parses; the ref is made then too, so whatever calls
    this depends on the seed. -#}
{% macro seed_column_values(seed_name, column, order_by) %}
    {% set seed = ref(seed_name) %}
    {% if not execute %}{{ return([]) }}{% endif %}
    {% set query %}select {{ column }} from {{ seed }} order by {{ order_by }}{% endset %}
    {{ return(run_query(query).columns[0].values()) }}
{% endmacro %}
