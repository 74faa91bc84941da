{#- A scalar policy knob from the policy_parameters seed, as a numeric expression. -#}
{% macro policy(parameter) -%}
    (select value from {{ ref('policy_parameters') }} where parameter = '{{ parameter }}')
{%- endmacro %}
