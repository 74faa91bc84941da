{#- Days sales outstanding: what is open / what was sold in the trailing window, in days of
    that window (policy trailing_window_days). Null without sales. -#}
{% macro days_sales_outstanding(open_amount, sales_amount) -%}
    round({{ open_amount }} / nullif({{ sales_amount }}, 0) * {{ policy('trailing_window_days') }}, 1)
{%- endmacro %}
