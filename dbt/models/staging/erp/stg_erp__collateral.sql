with

source as (

    select * from {{ source('erp', 'collateral') }}

),

renamed as (

    select
        collateral_id,
        customer_id,
        collateral_type,
        value as collateral_value,
        valid_from as valid_from_date,
        valid_to as valid_to_date
    from source

)

select * from renamed
