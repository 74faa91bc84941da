with

source as (

    select * from {{ source('erp', 'shipments') }}

),

renamed as (

    select
        shipment_id,
        order_id,
        customer_id,
        ship_date,
        ship_to_region,
        amount as shipment_amount
    from source

)

select * from renamed
