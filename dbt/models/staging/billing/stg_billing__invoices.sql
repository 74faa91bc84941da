with

source as (

    select * from {{ source('billing', 'invoices') }}

),

renamed as (

    select
        invoice_id,
        invoice_number,
        customer_id,
        order_id,
        invoice_date,
        due_date,
        currency,
        amount as invoice_amount,
        status as invoice_status
    from source

)

select * from renamed
