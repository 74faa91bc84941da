with

source as (

    select * from {{ source('erp', 'customer_financials') }}

),

renamed as (

    select
        customer_id,
        period_end as period_end_date,
        total_assets,
        total_liabilities,
        current_assets,
        current_liabilities,
        inventory,
        cash,
        intangible_assets
    from source

)

select * from renamed
