with

source as (

    select * from {{ source('billing', 'invoice_lines') }}

),

renamed as (

    select
        invoice_id,
        line_no,
        product_id,
        quantity,
        unit_price,
        amount as line_amount,
        cost_amount as line_cost_amount
    from source

)

select * from renamed
