with

source as (

    select * from {{ source('billing', 'credit_notes') }}

),

renamed as (

    select
        credit_note_id,
        invoice_id,
        customer_id,
        credit_date,
        company_id,
        upper(btrim(currency)) as document_currency,
        amount as credit_document_amount,
        company_amount as booked_company_amount,
        reason as credit_reason
    from source

)

select * from renamed
