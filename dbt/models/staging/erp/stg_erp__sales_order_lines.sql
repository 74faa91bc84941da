with

source as (

    select * from {{ source('erp', 'sales_order_lines') }}

),

renamed as (

    select
        order_id,
        line_no,
        product_id,
        quantity as ordered_quantity,
        unit_price,
        shipped_quantity
    from source

)

select * from renamed
