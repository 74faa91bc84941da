with

source as (

    select * from {{ source('billing', 'retailer_accounts') }}

),

renamed as (

    select
        distributor_id,
        retailer,
        account_opened_date
    from source

)

select * from renamed
