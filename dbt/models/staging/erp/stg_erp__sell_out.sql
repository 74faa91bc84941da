with

source as (

    select * from {{ source('erp', 'sell_out') }}

),

renamed as (

    select
        customer_id,
        period_month,
        product_id,
        region as sell_out_region,
        quantity_sold,
        closing_inventory_qty as closing_inventory_quantity
    from source

)

select * from renamed
