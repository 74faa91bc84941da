{#- An accounting identity stated next to its model: the parts add up to the whole, on every
    row. The parts are listed, or named by a seed's rows (`parts_seed` rows' `name_column`,
    each between `prefix` and `suffix`), so the identity follows the seed: a bucket added to
    aging_buckets is a part of open_amount with no other change. -#}
{% test adds_up_to(model, column_name, parts=none, parts_seed=none, name_column=none, prefix='', suffix='', order_by=none) %}

{%- set names = parts if parts is not none else seed_column_values(parts_seed, name_column, order_by or name_column) %}

select *
from {{ model }}
{%- if names | length > 0 %}
where {% for name in names %}{{ prefix ~ name ~ suffix }}{{ " + " if not loop.last }}{% endfor %} <> {{ column_name }}
{%- else %}
where false
{%- endif %}

{% endtest %}
