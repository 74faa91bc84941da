-- The value score (docs/design.md §2.1, seed 004): each factor as a percentile rank among the
-- customers that have it, weighted by the value_score_weights seed, on 0-100.
{%- set value_factors = value_score_factors() %}

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

sales as (

    select * from {{ ref('int_customers__sales_metrics') }}

),

behaviour as (

    select * from {{ ref('int_ar__payment_behaviour') }}

),

character as (

    select * from {{ ref('int_credit__character_scores') }}

),

weights as (

    select * from {{ ref('value_score_weights') }}

),

factors as (

    select
        customers.customer_id,
        sales.quantity_12m as sales_volume,
        sales.unit_price_vs_list,
        sales.net_revenue_12m as revenue,
        behaviour.collection_rate_12m as collection_rate,
        sales.gross_margin,
        sales.quality_loss,
        customers.influence_rating as influence,
        character.character_score as reputation
    from customers
    left join sales on customers.customer_id = sales.customer_id
    left join behaviour on customers.customer_id = behaviour.customer_id
    left join character on customers.customer_id = character.customer_id

),

percentiles as (

    -- each factor as a percentile rank among the customers that have it (0 lowest, 1 highest);
    -- a customer without a value for a factor sits in the middle (0.5)
    select
        customer_id,
        {%- for factor in value_factors %}
        cast(coalesce(case when {{ factor }} is not null then
            percent_rank() over (partition by {{ factor }} is null order by {{ factor }}) end, 0.5) as numeric)
            as {{ factor }}_percentile{{ "," if not loop.last }}
        {%- endfor %}
    from factors

),

final as (

    select
        customer_id,
        round(100 * (
            {%- for factor in value_factors %}
            (select weight from weights where factor = '{{ factor }}')
            * case when (select is_higher_better from weights where factor = '{{ factor }}')
                then {{ factor }}_percentile else 1 - {{ factor }}_percentile end
            {{ "+" if not loop.last }}
            {%- endfor %}
        ) / (select sum(weight) from weights), 1) as value_score,
        {%- for factor in value_factors %}
        round({{ factor }}_percentile, 4) as {{ factor }}_percentile,
        (select weight from weights where factor = '{{ factor }}') as {{ factor }}_weight{{ "," if not loop.last }}
        {%- endfor %}
    from percentiles

)

select * from final
