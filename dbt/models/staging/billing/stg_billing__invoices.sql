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
        company_id,
        upper(btrim(currency)) as document_currency,
        amount as document_amount,
        company_amount as booked_company_amount,
        status as invoice_status
    from source

)

select * from renamed
