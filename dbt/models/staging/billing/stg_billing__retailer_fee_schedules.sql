with

source as (

    select * from {{ source('billing', 'retailer_fee_schedules') }}

),

renamed as (

    select
        retailer,
        fee_type,
        basis as fee_basis,
        unit_amount,
        bundle_amount,
        valid_from as valid_from_date,
        valid_to as valid_to_date
    from source

)

select * from renamed
