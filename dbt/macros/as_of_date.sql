{#- The day the run is for; every "as of" rule reads it. `kam` passes it in KAM_AS_OF_DATE,
    read only while executing: a new day then keeps dbt's partial parse, where a changed
    --vars would re-parse the whole project. Without it, var as_of_date (dbt --vars). -#}
{% macro as_of_date() -%}
    {%- set day = env_var("KAM_AS_OF_DATE", "") if execute else "" -%}
    cast('{{ day or var("as_of_date") }}' as date)
{%- endmacro %}
