{#- An order that still stands on the as-of date: not cancelled by then. Its cancellation
    date says when; without one, today's status stands in. -#}
{% macro is_order_standing(orders) -%}
    case
        when {{ orders }}.cancelled_date is not null then {{ orders }}.cancelled_date > {{ as_of_date() }}
        else {{ orders }}.order_status <> 'cancelled'
    end
{%- endmacro %}
