{#- The schema of the history tables, as dbt_project.yml configures models/history: read
    from the graph, so the name is spelled once on the dbt side. Empty while dbt only parses. -#}
{% macro history_schema() %}
    {%- if not execute %}{{ return('') }}{% endif -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.fqn[1] == 'history' -%}
        {{ return(node.schema) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("no model under models/history: no history schema") }}
{% endmacro %}
