with

source as (

    select * from {{ source('erp', 'exchange_rates') }}

),

renamed as (

    select
        upper(btrim(currency)) as currency,
        rate_date,
        rate
    from source

)

select * from renamed
