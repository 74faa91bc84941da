{#- The last day before the trailing window (policy trailing_window_days) that ends on the
    as-of date: a date is in the window when it is after this one. -#}
{% macro trailing_window_excluded_date() -%}
    ({{ as_of_date() }} - cast({{ policy('trailing_window_days') }} as integer))
{%- endmacro %}
