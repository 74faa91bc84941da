with

source as (

    select * from {{ source('erp', 'company_financials') }}

),

renamed as (

    select
        period_end as period_end_date,
        total_assets,
        total_liabilities,
        cash,
        accounts_receivable
    from source

)

select * from renamed
