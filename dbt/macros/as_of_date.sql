{#- The day the run is for (var as_of_date, set by `kam`); every "as of" rule reads it. -#}
{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}
