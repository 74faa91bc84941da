with

source as (

    select * from {{ source('billing', 'payment_allocations') }}

),

renamed as (

    select
        payment_id,
        invoice_id,
        company_id,
        upper(btrim(currency)) as document_currency,
        amount as allocated_document_amount,
        company_amount as booked_company_amount
    from source

)

select * from renamed
