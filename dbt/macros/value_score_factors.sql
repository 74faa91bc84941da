{#- The value score's factors (the value_score_weights seed weighs them): each is computed in
    int_customers__value_scores, and customer_tiers shows each one's percentile and weight. -#}
{% macro value_score_factors() %}
    {{ return(['sales_volume', 'unit_price_vs_list', 'revenue', 'collection_rate', 'gross_margin',
               'quality_loss', 'influence', 'reputation']) }}
{% endmacro %}
