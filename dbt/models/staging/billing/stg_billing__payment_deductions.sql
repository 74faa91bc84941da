with

source as (

    select * from {{ source('billing', 'payment_deductions') }}

),

renamed as (

    select
        deduction_id,
        payment_id,
        invoice_id,
        customer_id,
        company_id,
        upper(btrim(currency)) as document_currency,
        amount as deduction_document_amount,
        company_amount as booked_company_amount,
        reason_code,
        claim_reference
    from source

)

select * from renamed
