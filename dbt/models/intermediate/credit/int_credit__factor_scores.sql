-- The five Cs of every customer (0-100 each) and the annual sales its limit is a share of.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

character as (

    select * from {{ ref('int_credit__character_scores') }}

),

capacity as (

    select * from {{ ref('int_credit__capacity_scores') }}

),

capital as (

    select * from {{ ref('int_credit__capital_scores') }}

),

exposure as (

    select * from {{ ref('int_credit__exposure') }}

),

collateral as (

    select * from {{ ref('stg_erp__collateral') }}
    where
        valid_from_date <= {{ as_of_date() }}
        and (valid_to_date is null or valid_to_date >= {{ as_of_date() }})

),

conditions as (

    select * from {{ ref('economic_conditions') }}
    where {{ as_of_date() }} between valid_from and valid_to

),

sales as (

    select * from {{ ref('int_customers__sales_metrics') }}

),

valid_collateral as (

    select
        customer_id,
        sum(collateral_value) as collateral_value
    from collateral
    group by customer_id

),

final as (

    select
        customers.customer_id,
        cast(sales.net_revenue_12m as numeric(18, 2)) as annual_sales,
        character.character_score,
        character.on_time_ratio_12m,
        character.character_events,
        character.is_character_default,
        capacity.capacity_score,
        capacity.revenue_trend,
        capacity.capacity_events,
        capital.capital_score,
        capital.has_financials,
        capital.financials_date,
        capital.debt_ratio,
        capital.current_ratio,
        capital.quick_ratio,
        cast(coalesce(valid_collateral.collateral_value, 0) as numeric(18, 2)) as collateral_value,
        cast(coalesce(
            {{ ratio_score('collateral_coverage', 'coalesce(valid_collateral.collateral_value, 0) / nullif(exposure.exposure, 0)') }},
            case when valid_collateral.collateral_value > 0 then 100 else 0 end
        ) as numeric(5, 1)) as collateral_score,
        (select conditions_score from conditions order by valid_from desc limit 1) as conditions_score,
        coalesce((select is_recession from conditions order by valid_from desc limit 1), false) as is_recession,
        (select condition from conditions order by valid_from desc limit 1) as economic_condition
    from customers
    left join character on customers.customer_id = character.customer_id
    left join capacity on customers.customer_id = capacity.customer_id
    left join capital on customers.customer_id = capital.customer_id
    left join exposure on customers.customer_id = exposure.customer_id
    left join valid_collateral on customers.customer_id = valid_collateral.customer_id
    left join sales on customers.customer_id = sales.customer_id

)

select * from final
