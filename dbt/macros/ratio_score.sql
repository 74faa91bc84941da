{#- A ratio scored 0-100 by the credit_ratio_scoring seed: linear between the value that
    scores 0 and the value that scores 100, flat beyond them. Null stays null. -#}
{% macro ratio_score(ratio_name, value) -%}
    (
        select 100 * greatest(0, least(1,
            ({{ value }} - scoring.zero_score_at) / nullif(scoring.full_score_at - scoring.zero_score_at, 0)))
        from {{ ref('credit_ratio_scoring') }} as scoring
        where scoring.ratio = '{{ ratio_name }}'
    )
{%- endmacro %}
